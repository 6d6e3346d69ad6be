"""WAL files as the repository stores them, without a server: listed from their keys and
read back checked against the sha256 each key carries."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from lifeboat.config.model import CompressionConfig
from lifeboat.errors import IntegrityError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor, Decryptor, write_identity
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.objects import write_plain
from lifeboat.repo.wal_files import ArchivedFile, archived_files, read_verified
from lifeboat.storage.memory import MemoryStorage

SEGMENT = "000000010000000000000003"
CONTENT = bytes(range(256)) * 64


@pytest.fixture
def repo() -> Repository:
    repository = Repository("main", MemoryStorage("wal-files"))
    repository.init()
    return repository


@pytest.fixture
def identity(tmp_path: Path) -> tuple[Path, str]:
    key = tmp_path / "age.key"
    return key, write_identity(key)


def store(repo: Repository, recipient: str, name: str, plain: bytes, digest: str) -> str:
    """plain, compressed and encrypted as wal-push stores it, under the key naming digest."""
    key = layout.wal_key("wms", name, digest, ".age")
    compression = CompressionConfig(level=1, threads=1)
    write_plain(repo, key, io.BytesIO(plain), AgeEncryptor([recipient]), compression, "wal")
    return key


def decryptors(key_file: Path) -> dict[str, Decryptor]:
    return {"age": AgeDecryptor(key_file)}


def test_a_stored_segment_is_listed_and_read_back(
    repo: Repository, identity: tuple[Path, str]
) -> None:
    digest = hashlib.sha256(CONTENT).hexdigest()
    key = store(repo, identity[1], SEGMENT, CONTENT, digest)
    repo.storage.write(f"wms/wal/{SEGMENT[:16]}/notes.txt", [b"not a WAL object"])

    assert list(archived_files(repo.storage, "wms")) == [ArchivedFile(SEGMENT, digest, key)]
    assert read_verified(repo.storage, key, digest, decryptors(identity[0]).__getitem__) == CONTENT


def test_content_that_does_not_match_its_key_is_corrupted(
    repo: Repository, identity: tuple[Path, str]
) -> None:
    claimed = hashlib.sha256(b"what was archived").hexdigest()
    key = store(repo, identity[1], SEGMENT, CONTENT, claimed)
    with pytest.raises(IntegrityError, match="does not match its checksum"):
        read_verified(repo.storage, key, claimed, decryptors(identity[0]).__getitem__)


def test_a_damaged_object_names_its_key(repo: Repository, identity: tuple[Path, str]) -> None:
    digest = hashlib.sha256(CONTENT).hexdigest()
    key = store(repo, identity[1], SEGMENT, CONTENT, digest)
    with repo.storage.read(key) as stream:
        stored = bytearray(stream.read())
    stored[-20] ^= 0xFF  # inside the last encrypted chunk: its authentication fails
    repo.storage.write(key, [bytes(stored)])
    with pytest.raises(IntegrityError, match=key):
        read_verified(repo.storage, key, digest, decryptors(identity[0]).__getitem__)
