"""How an S3 write proves its bytes, and how the service's answers are checked.

Two ways, picked per repository by `upload_checksum`:

* "crc32c" (the default): every request carries x-amz-checksum-crc32c. S3 refuses a part
  whose bytes do not match (BadDigest), echoes the checksum it stored, and reports the
  object's composite checksum (the CRC32C of the parts' CRC32Cs, then `-<parts>`), also
  for objects encrypted with KMS, whose ETag says nothing about their content. CRC32C
  costs a fraction of MD5's CPU and lets the service skip a full-object checksum of its own.
* "md5": Content-MD5 on every request, and the ETag checked where it is an MD5 (not with
  KMS or customer-key encryption): for S3-compatible stores that do not understand the
  flexible checksums.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from lifeboat.util.crc32c import Crc32c

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

UploadChecksum = Literal["crc32c", "md5"]

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")
# ETags of objects encrypted with a KMS or customer key are not the MD5 of the content
_OPAQUE_ETAG_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse"})


class SentPart(NamedTuple):
    number: int
    etag: str
    digest: bytes
    size: int


class Unconfirmed(Exception):
    """The store does not report the checksum asked for: it does not understand it, and
    retrying will not change that."""


class Integrity(Protocol):
    def digest(self, data: bytes) -> bytes: ...

    def upload_arguments(self, digest: bytes) -> dict[str, Any]:
        """What PutObject and UploadPart send with bytes of this digest."""
        ...

    def start_arguments(self) -> dict[str, Any]:
        """What CreateMultipartUpload sends."""
        ...

    def head_arguments(self) -> dict[str, Any]:
        """What HeadObject sends to have the stored checksum reported."""
        ...

    def part_entry(self, part: SentPart) -> CompletedPartTypeDef:
        """A part's entry in CompleteMultipartUpload."""
        ...

    def reply_problem(self, reply: Any, digest: bytes) -> str | None:
        """What is wrong with the reply to a write of bytes of this digest, if anything."""
        ...

    def single_checksum(self, digest: bytes) -> str:
        """What the service reports for an object written by one PutObject."""
        ...

    def multipart_checksum(self, parts: Sequence[SentPart]) -> str:
        """What the service reports for an object made of these parts."""
        ...

    def head_problem(self, head: Any, expected: str) -> str | None:
        """What is wrong with the checksum HeadObject reports, if anything."""
        ...


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class Crc32cIntegrity:
    NAME = "CRC32C"

    def digest(self, data: bytes) -> bytes:
        checksum = Crc32c()
        checksum.update(data)
        return checksum.digest("big")

    def upload_arguments(self, digest: bytes) -> dict[str, Any]:
        # the algorithm too: some stores (moto among them) only echo a checksum they are told about
        return {"ChecksumAlgorithm": self.NAME, "ChecksumCRC32C": _b64(digest)}

    def start_arguments(self) -> dict[str, Any]:
        return {"ChecksumAlgorithm": self.NAME}

    def head_arguments(self) -> dict[str, Any]:
        return {"ChecksumMode": "ENABLED"}

    def part_entry(self, part: SentPart) -> CompletedPartTypeDef:
        return {"PartNumber": part.number, "ETag": part.etag, "ChecksumCRC32C": _b64(part.digest)}

    def reply_problem(self, reply: Any, digest: bytes) -> str | None:
        stored = reply.get("ChecksumCRC32C")
        if not stored:
            raise Unconfirmed(
                'the store does not confirm CRC32C checksums: set upload_checksum = "md5" '
                "for this repository"
            )
        if stored != _b64(digest):
            return f"the store kept CRC32C {stored}, the bytes sent give {_b64(digest)}"
        return None

    def single_checksum(self, digest: bytes) -> str:
        return _b64(digest)

    def multipart_checksum(self, parts: Sequence[SentPart]) -> str:
        composite = self.digest(b"".join(part.digest for part in parts))
        return f"{_b64(composite)}-{len(parts)}"

    def head_problem(self, head: Any, expected: str) -> str | None:
        stored = head.get("ChecksumCRC32C")
        if not stored:
            raise Unconfirmed(
                "the store reports no CRC32C checksum for the object: set upload_checksum = "
                '"md5" for this repository'
            )
        if not _same_composite(stored, expected):
            return f"the store reports CRC32C {stored}, the bytes sent give {expected}"
        return None


class Md5Integrity:
    def digest(self, data: bytes) -> bytes:
        return hashlib.md5(data, usedforsecurity=False).digest()

    def upload_arguments(self, digest: bytes) -> dict[str, Any]:
        return {"ContentMD5": _b64(digest)}

    def start_arguments(self) -> dict[str, Any]:
        return {}

    def head_arguments(self) -> dict[str, Any]:
        return {}

    def part_entry(self, part: SentPart) -> CompletedPartTypeDef:
        return {"PartNumber": part.number, "ETag": part.etag}

    def reply_problem(self, reply: Any, digest: bytes) -> str | None:
        # S3 checks Content-MD5 itself; a store that does not is caught here, where
        # sending the bytes again is cheap and nothing is visible yet
        etag = reply.get("ETag", "").strip('"')
        if etag_is_md5(etag, reply) and etag != digest.hex():
            return f"the store kept ETag {etag}, the bytes sent give {digest.hex()}"
        return None

    def single_checksum(self, digest: bytes) -> str:
        return digest.hex()

    def multipart_checksum(self, parts: Sequence[SentPart]) -> str:
        combined = self.digest(b"".join(part.digest for part in parts))
        return f"{combined.hex()}-{len(parts)}"

    def head_problem(self, head: Any, expected: str) -> str | None:
        etag = head.get("ETag", "").strip('"')
        if etag_is_md5(etag, head) and etag != expected:
            return f"the store reports ETag {etag}, the bytes sent give {expected}"
        return None


def _same_composite(stored: str, expected: str) -> bool:
    """S3 reports a multipart object's checksum as `<base64>-<parts>`; some stores (moto's
    HeadObject) leave out the part count, which then cannot be compared."""
    value, _, parts = stored.partition("-")
    expected_value, _, expected_parts = expected.partition("-")
    return value == expected_value and parts in ("", expected_parts)


def etag_is_md5(etag: str, head: Any) -> bool:
    encrypted_with = head.get("ServerSideEncryption")
    if encrypted_with in _OPAQUE_ETAG_ENCRYPTION or head.get("SSECustomerAlgorithm"):
        return False
    return bool(_MD5_ETAG.match(etag))


def integrity_for(name: UploadChecksum) -> Integrity:
    return Crc32cIntegrity() if name == "crc32c" else Md5Integrity()
