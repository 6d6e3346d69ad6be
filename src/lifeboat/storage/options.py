"""What a repository's configuration tells its storage backend beyond the URL.

Backends read only the fields that mean something to them and ignore the rest, so one
repository table serves every kind of storage."""

from __future__ import annotations

from typing import Literal, NamedTuple

ObjectKind = Literal["data", "wal", "metadata"]


class StorageOptions(NamedTuple):
    # S3: storage class of backup data and of WAL objects (metadata always STANDARD)
    storage_class: str | None = None
    wal_storage_class: str | None = None
    # S3: "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with kms_key_id or the bucket's key)
    server_side_encryption: str | None = None
    kms_key_id: str | None = None
    # S3: retain-until of every new object, in days from its upload, where the bucket has
    # Object Lock; mode COMPLIANCE (nobody can shorten it) or GOVERNANCE
    object_lock_days: int | None = None
    object_lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    # Azure: access tier of backup data and WAL blobs (Hot, Cool, Cold, Archive)
    access_tier: str | None = None
    # multipart / block / resumable upload: part size and parts in flight
    part_size: int = 16 * 1024 * 1024
    upload_concurrency: int = 4
    # transient failures (timeouts, throttling, 5xx) are retried this many times, with
    # exponential backoff and full jitter
    max_attempts: int = 8
    # S3: the checksum every upload carries and the store must confirm: "crc32c" (flexible
    # checksums) or "md5" (Content-MD5 and ETag, for stores without flexible checksums)
    upload_checksum: Literal["crc32c", "md5"] = "crc32c"


def object_kind(key: str) -> ObjectKind:
    """Which kind of object a repository key names: backup data, WAL, or the small files
    (manifests, markers, locks, holds) that must stay cheap and quick to read."""
    from lifeboat.repo import layout

    parts = key.split("/")
    if len(parts) >= 3 and parts[1] in ("wal", "wal-stream"):
        return "wal"
    parsed = layout.parse_backup_key(key)
    if parsed is not None and parsed[2] not in (layout.MANIFEST, layout.MANIFEST_COPY):
        return "data"
    return "metadata"
