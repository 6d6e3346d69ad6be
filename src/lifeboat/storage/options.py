"""What a repository's configuration tells its storage backend beyond the URL, and which
of it each kind of backend honours.

One repository table serves every kind of storage, but a setting a backend cannot honour
(Object Lock on a local folder, an access tier on S3) must never be dropped silently: each
backend declares here the options and URL parameters it acts on, and anything else set for
it is a configuration error. The declarations live in this light module rather than in the
backends, which import their cloud SDK, so that loading the configuration can check them
without importing any SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

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


# Which kind of object a key names, for the settings that differ by kind (storage class,
# tier, retention, how a delete treats older versions). The repository layout knows; the
# repository layer hands its classifier (repo/layout.py: object_kind) to the backend it
# opens, so that storage knows no layout.
KeyClassifier = Callable[[str], ObjectKind]


def every_key_is_data(key: str) -> ObjectKind:
    """The classifier of a backend opened without one (a test of the backend alone): each
    setting of its options applies to every key."""
    return "data"


class Honoured(NamedTuple):
    """What one kind of backend acts on."""

    name: str  # as messages name it: "local", "S3"...
    options: frozenset[str]  # StorageOptions fields
    url_parameters: frozenset[str]  # the NAME of ?NAME=VALUE in its URLs
    url_note: str = ""  # said when its URL has a parameter it does not take


_UPLOADS = frozenset({"part_size", "upload_concurrency", "max_attempts"})
_STORAGE_CLASSES = frozenset({"storage_class", "wal_storage_class"})

# by URL scheme; a plain path is a file:// repository
HONOURED: dict[str, Honoured] = {
    "file": Honoured("local", frozenset(), frozenset()),
    "mem": Honoured("memory", frozenset(), frozenset()),
    "s3": Honoured(
        "S3",
        _UPLOADS
        | _STORAGE_CLASSES
        | {
            "server_side_encryption",
            "kms_key_id",
            "object_lock_days",
            "object_lock_mode",
            "upload_checksum",
        },
        frozenset({"region", "endpoint"}),
    ),
    "az": Honoured(
        "Azure",
        _UPLOADS | {"access_tier"},
        frozenset({"account"}),
        # what people paste into an Azure URL is a SAS token
        "credentials come from the environment, never from the URL",
    ),
    # a resumable upload takes its chunks in order only: no upload_concurrency
    "gs": Honoured("GCS", _STORAGE_CLASSES | {"part_size", "max_attempts"}, frozenset()),
}

# the repository table's key for a StorageOptions field, where they differ
CONFIG_KEYS = {"part_size": "part_size_mb"}


def url_scheme(url: str) -> str:
    """The scheme of a repository URL; a plain path is a file:// one."""
    return urlsplit(url).scheme if "://" in url else "file"


def shown_url(url: str) -> str:
    """A repository URL as messages show it: without its query, where a value may be a
    secret (an Azure SAS token), and without a password."""
    from lifeboat.util.redact import redact

    return redact(url.split("?", 1)[0])


def _used_by(applies: Iterable[str]) -> str:
    names = [HONOURED[scheme].name for scheme in HONOURED if scheme in applies]
    if len(names) > 1:
        names[-2:] = [f"{names[-2]} and {names[-1]}"]
    return ", ".join(names)


def unsupported(url: str, options: Iterable[str]) -> list[str]:
    """What the backend of url cannot honour among the given StorageOptions fields (other
    names are not storage options and are ignored) and the URL's own parameters, one
    readable reason each (empty when it honours all of them).
    An unknown scheme has no declaration: opening the repository reports it."""
    scheme = url_scheme(url)
    backend = HONOURED.get(scheme)
    if backend is None:
        return []
    reasons = []
    given = set(options)
    for field in StorageOptions._fields:  # in their declared order
        if field in given and field not in backend.options:
            owners = [s for s, other in HONOURED.items() if field in other.options]
            reasons.append(
                f"{CONFIG_KEYS.get(field, field)} is not supported by {backend.name} "
                f"repositories (it applies to {_used_by(owners)} repositories)"
            )
    # a plain path is only a path: "?" is a valid character of a folder name
    query = urlsplit(url).query if "://" in url else ""
    # only the parameter names: a value may be a secret (an Azure SAS token)
    for name in dict.fromkeys(name for name, _ in parse_qsl(query, keep_blank_values=True)):
        if name in backend.url_parameters:
            continue
        owners = [s for s, other in HONOURED.items() if name in other.url_parameters]
        if owners:
            hint = f"it applies to {_used_by(owners)} repositories"
        else:
            taken = " and ".join(f"{known}=" for known in sorted(backend.url_parameters))
            hint = f"{scheme}:// URLs take {taken or 'none'}"
            if backend.url_note:
                hint = f"{hint}; {backend.url_note}"
        reasons.append(
            f"URL parameter {name}= is not supported by {backend.name} repositories ({hint})"
        )
    return reasons


def set_options(options: StorageOptions) -> list[str]:
    """The fields of options that differ from their defaults: those a caller asked for."""
    defaults = StorageOptions()
    return [name for name, value in options._asdict().items() if value != getattr(defaults, name)]
