"""WAL files as the repository stores them: each under a key carrying its plaintext sha256,
listed from the keys and read back checked against it. Pushing and fetching them is wal/'s."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from lifeboat.errors import IntegrityError
from lifeboat.repo import layout
from lifeboat.storage.base import Storage

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor


class ArchivedFile(NamedTuple):
    name: str  # the WAL file name: segment, .partial, .history or .backup
    plain_sha256: str
    key: str


def archived_files(storage: Storage, source: str) -> Iterator[ArchivedFile]:
    """Every stored copy in the source's WAL archive."""
    for info in storage.list(f"{source}/wal/"):
        parsed = layout.parse_wal_key(info.key)
        if parsed is not None:
            yield ArchivedFile(parsed[0], parsed[1], info.key)


def read_verified(
    storage: Storage, key: str, digest: str, decryptor_for: Callable[[str], Decryptor]
) -> bytes:
    """The plaintext of a WAL object, checked against the sha256 its key carries."""
    import zstandard

    from lifeboat.pipeline.compress import decompressing_writer

    decryptor = decryptor_for("age" if key.endswith(".age") else "gpg")
    with storage.read(key) as stream:
        plain = io.BytesIO()
        decompressor = decompressing_writer(plain)
        try:
            decryptor.decrypt(stream, decompressor)
            decompressor.flush()
        except zstandard.ZstdError as exc:
            raise IntegrityError(
                f"{key}: decompression failed, the object is corrupted: {exc}"
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}") from None
    data = plain.getvalue()
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"{key}: content does not match its checksum, the object is corrupted")
    return data
