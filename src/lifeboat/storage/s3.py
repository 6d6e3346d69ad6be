"""S3 backend: AWS S3 and the stores that speak its API (MinIO, R2, Ceph...).

A repository is `s3://BUCKET/PREFIX?region=REGION&endpoint=URL`; every key lives under
`PREFIX/`. Credentials come from boto3's default chain (environment, shared files, instance
roles), never from the URL.

Writes are all-or-nothing: a small object is one PutObject, a larger one a multipart upload
that only becomes visible when completed and is aborted on any failure. Memory stays bounded
by about part_size x (upload_concurrency + 1) whatever the object's size.

Retries are ours, not the SDK's (whose own are switched off), so that `max_attempts` means
what it says: transient failures are retried with exponential backoff and full jitter,
permanent ones raise PermanentError at once with one line saying what to do.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from lifeboat.errors import ConfigError, StorageError
from lifeboat.storage.base import (
    AlreadyExists,
    Capabilities,
    NotFound,
    ObjectInfo,
    PermanentError,
    TransientError,
    validate_key,
)
from lifeboat.storage.capabilities import (
    ExclusiveCreate,
    LegalHolds,
    LockState,
    ObjectLocking,
    PendingUpload,
    Tiering,
    UploadJanitor,
    holding,
)
from lifeboat.storage.options import HONOURED, KeyClassifier, StorageOptions, every_key_is_data
from lifeboat.storage.parts import PartSplitter, Pieces, join_pieces
from lifeboat.storage.resuming import ResumingReader
from lifeboat.storage.retry import Cancelled, Retry, error_line, one_line
from lifeboat.storage.s3_integrity import SentPart, Unconfirmed, integrity_for
from lifeboat.util.redact import redact

try:
    import boto3.session
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        HTTPClientError,
        IncompleteReadError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        SSLError,
    )
    from botocore.exceptions import ConnectionError as SdkConnectionError
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "S3 repositories need boto3: install it with pip install 'boto3>=1.36'"
    ) from missing

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

T = TypeVar("T")

# S3 refuses multipart uploads of more parts than this
MAX_PARTS = 10_000
# backoff before retry n (1-based) is uniform in [0, min(cap, base * 2**(n-1))] seconds
BACKOFF_BASE = 0.25
BACKOFF_CAP = 20.0
# the tag backup data objects are uploaded with, for lifecycle rules by backup tier
TIER_TAG = "lifeboat-tier"
UPLOAD_TIER = "daily"
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
READ_BUFFER = 1024 * 1024

# Error codes worth retrying besides every 5xx and 429. BadDigest: the bytes were damaged
# on the way (the checksum sent caught it), sending them again fixes it.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "OperationAborted",
        "BadDigest",
        "XAmzContentSHA256Mismatch",
        # a conditional write raced another request on the same key: S3 asks to retry
        "ConditionalRequestConflict",
    }
)
# not an outage: the endpoint does not implement the call at all
NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "501", "405"})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "403", "Forbidden"})
WRONG_REGION_CODES = frozenset(
    {
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "IllegalLocationConstraintException",
        "301",
    }
)
BAD_TOKEN_CODES = frozenset({"ExpiredToken", "TokenRefreshRequired", "InvalidToken"})


# --- the URL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"
    region: str | None
    endpoint: str | None

    @property
    def display(self) -> str:
        """The repository as error messages name it: no query, no secret."""
        return redact(f"s3://{self.bucket}/{self.prefix}".rstrip("/"))


def parse_s3_url(url: str) -> S3Location:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"repository URL {redact(url)!r} is not s3://BUCKET/PREFIX")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - HONOURED["s3"].url_parameters)
    if unknown:
        raise ConfigError(
            f"repository URL {redact(url)!r}: unknown parameter {unknown[0]!r} "
            "(s3:// URLs take region= and endpoint=)"
        )
    endpoint = query.get("endpoint", [""])[-1] or None
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError(
            f"repository URL {redact(url)!r}: endpoint must be an http:// or https:// URL"
        )
    prefix = unquote(parts.path).strip("/")
    return S3Location(
        bucket=parts.netloc,
        prefix=f"{prefix}/" if prefix else "",
        region=query.get("region", [""])[-1] or None,
        endpoint=endpoint,
    )


# --- what a write sent, to check against what S3 stored -------------------------------------


class _SentObject(NamedTuple):
    size: int
    checksum: str  # what the store reports for these bytes (see s3_integrity)
    version_id: str | None


# S3Storage has a method named list: these aliases keep the builtin usable in its annotations
UploadedParts = list[SentPart]
Versions = list[tuple[str, bool]]  # (version id, is the latest)


class _Damaged(Exception):
    """What the service stored differs from what was sent: worth sending again."""


class _PartUploads:
    """Uploads parts on a small thread pool, at most `concurrency` in flight: add() waits
    for a free slot before joining the next part, which bounds the memory."""

    def __init__(
        self, upload: Callable[[int, bytes, threading.Event], SentPart], concurrency: int
    ) -> None:
        self._upload = upload
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-part")
        self._slots = threading.Semaphore(concurrency)
        self._stop = threading.Event()
        self._futures: list[Future[SentPart]] = []
        self._failure: BaseException | None = None

    def add(self, pieces: Pieces) -> None:
        self._slots.acquire()
        try:
            if self._failure is not None:
                raise self._failure
            number = len(self._futures) + 1
            future = self._pool.submit(self._upload, number, join_pieces(pieces), self._stop)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._part_done)
        self._futures.append(future)

    def _part_done(self, future: Future[SentPart]) -> None:
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()
        self._slots.release()

    @property
    def count(self) -> int:
        return len(self._futures)

    def finish(self) -> UploadedParts:
        return [future.result() for future in self._futures]

    def close(self, failed: bool) -> None:
        if failed:
            # parts still queued are dropped; parts in flight stop at their next retry
            self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=failed)


# --- reading -------------------------------------------------------------------------------


# --- the backend ---------------------------------------------------------------------------


class _BucketFeatures(NamedTuple):
    versioning: bool  # Enabled now
    keeps_versions: bool  # Enabled or Suspended: older versions may exist
    object_lock: bool


class S3Storage(ExclusiveCreate, UploadJanitor, ObjectLocking, LegalHolds, Tiering):
    """A repository in an S3 bucket; see the module docstring."""

    def __init__(
        self, url: str, options: StorageOptions, *, classify: KeyClassifier = every_key_is_data
    ) -> None:
        self.url = url
        self.options = options
        self._object_kind = classify
        self.location = parse_s3_url(url)
        self.retry = Retry(options.max_attempts, BACKOFF_BASE, BACKOFF_CAP)
        self.integrity = integrity_for(options.upload_checksum)
        self._s3: S3Client | None = None
        self._features: _BucketFeatures | None = None
        self._capabilities: Capabilities | None = None
        self._bucket_exists = False
        self._lock = threading.Lock()

    # -- capabilities, found at first need --

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            features = self._bucket_features()
            self._capabilities = Capabilities(
                versioning=features.versioning,
                object_lock=features.object_lock,
                part_size=self.options.part_size,
                max_parallelism=self.options.upload_concurrency,
            )
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self._capabilities = value

    # -- the Storage protocol --

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        object_key = self._object_key(key)
        settings = self._write_settings(key)
        parts = PartSplitter(chunks, self.options.part_size)
        first = parts.next_part()
        try:
            if parts.has_more():
                sent = self._put_multipart(key, object_key, first, parts, settings)
            else:
                sent = self._put_single(key, object_key, join_pieces(first), settings)
            return self._verify(key, object_key, sent, settings)
        except Unconfirmed as exc:
            # a configuration problem, not damage: what was stored unchecked goes
            self._discard(key, object_key, None)
            raise PermanentError(self._fail(f"write {key}: {exc}")) from None

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        object_key = self._object_key(key)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"invalid range offset={offset} length={length}")
        if length == 0:
            self.stat(key)  # a missing key still raises NotFound
            return io.BytesIO(b"")
        action = f"read {key}"
        reply = self._call(
            action,
            lambda: self._get_object(object_key, _byte_range(offset, length)),
            key=key,
        )
        if reply is None:  # the range starts at or after the end of the object
            self.stat(key)
            return io.BytesIO(b"")
        end = offset + reply["ContentLength"]
        etag = reply["ETag"]

        def reopen(position: int) -> StreamingBody:
            return self._open_body(key, position, end - position, etag)

        def after_failure(exc: Exception, failures: int) -> None:
            self.retry.after_failure(exc, failures, lambda e: self._translate(e, action, key))

        body = ResumingReader(reply["Body"], offset, end, reopen, after_failure, READ_BUFFER)
        return io.BufferedReader(body, buffer_size=READ_BUFFER)

    def stat(self, key: str) -> ObjectInfo:
        head = self._head(key, self._object_key(key))
        return ObjectInfo(key, head["ContentLength"], head["LastModified"])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under prefix in key order (S3 lists in UTF-8 byte order, which is the
        order of Python's str comparison)."""
        client = self._client()
        root = self.location.prefix
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Prefix": root + prefix}
            if token is not None:
                arguments["ContinuationToken"] = token
            page = self._call(
                f"list {prefix or 'the repository'}", partial(client.list_objects_v2, **arguments)
            )
            self._bucket_exists = True
            for item in page.get("Contents", []):
                key = item["Key"][len(root) :]
                # folder markers made by consoles ("a/b/") are not objects of the repository
                if key and not key.endswith("/"):
                    yield ObjectInfo(key, item["Size"], item["LastModified"])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or token is None:
                return

    def delete(self, key: str) -> None:
        """Remove key; a missing key is fine. Where the bucket keeps versions, every version
        of backup data and WAL goes, so that the data is really gone and a version under
        Object Lock refuses loudly instead of hiding behind a delete marker. Metadata (lock
        files above all) only gets a delete marker: the database host's writer credential
        may not delete versions, and a bucket's default retention covers lock files too."""
        object_key = self._object_key(key)
        if self._object_kind(key) != "metadata" and self._bucket_features().keeps_versions:
            self._delete_every_version(key, object_key)
        else:
            client = self._client()
            self._call(
                f"delete {key}",
                lambda: client.delete_object(Bucket=self.location.bucket, Key=object_key),
                key=key,
            )

    # -- LegalHolds and Tiering --

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put (or release) a legal hold on key: no version of it can be deleted while held,
        whatever its retention. The bucket must have Object Lock."""
        self._on_object(
            f"{'set' if on else 'release'} the legal hold on {key}",
            key,
            lambda client, object_key: client.put_object_legal_hold(
                Bucket=self.location.bucket,
                Key=object_key,
                LegalHold={"Status": "ON" if on else "OFF"},
            ),
        )

    def tier(self, key: str) -> str | None:
        """The lifeboat-tier tag of key, which the bucket's lifecycle rules may act on."""
        reply = self._on_object(
            f"read the tags of {key}",
            key,
            lambda client, object_key: client.get_object_tagging(
                Bucket=self.location.bucket, Key=object_key
            ),
        )
        tags = {tag["Key"]: tag["Value"] for tag in reply.get("TagSet", [])}
        return tags.get(TIER_TAG)

    def set_tier(self, key: str, tier: str) -> None:
        """Tag key with its backup's retention tier (daily, weekly, monthly, yearly)."""
        self._on_object(
            f"tag {key} as {tier}",
            key,
            lambda client, object_key: client.put_object_tagging(
                Bucket=self.location.bucket,
                Key=object_key,
                Tagging={"TagSet": [{"Key": TIER_TAG, "Value": tier}]},
            ),
        )

    def _on_object(self, action: str, key: str, request: Callable[[S3Client, str], T]) -> T:
        """One request about key (given the client and the object's full key), retried."""
        object_key = self._object_key(key)
        client = self._client()
        return self._call(action, lambda: request(client, object_key), key=key)

    # -- ObjectLocking --

    def object_lock_state(self, key: str) -> LockState:
        head = self._head(key, self._object_key(key))
        until = head.get("ObjectLockRetainUntilDate")
        return LockState(until, head.get("ObjectLockLegalHoldStatus") == "ON")

    # -- ExclusiveCreate and UploadJanitor --

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """One PutObject with If-None-Match: * (S3's conditional write): S3 answers 412
        when the key exists. Stores that ignore the header overwrite instead; the
        repository lock checks for that before it relies on this."""
        object_key = self._object_key(key)
        settings = self._write_settings(key)
        try:
            sent = self._put_single(key, object_key, data, settings, if_absent=True)
        except AlreadyExists:
            mine = holding(self, key, data)
            if mine is None:
                raise
            return mine
        return self._verify(key, object_key, sent, settings)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """The multipart uploads of keys under prefix that were started and never
        completed or aborted (their writer was killed); S3 bills their parts."""
        for object_key, upload_id, initiated in self._multipart_uploads(prefix):
            yield PendingUpload(self._key_of(object_key), initiated, upload_id)

    def remove_pending_upload(self, upload: PendingUpload) -> None:
        self._abort_upload(self._object_key(upload.key), upload.handle)

    # -- keys --

    def _object_key(self, key: str) -> str:
        return self.location.prefix + validate_key(key)

    def _key_of(self, object_key: str) -> str:
        return object_key[len(self.location.prefix) :]

    # -- the client and its retries --

    def _client(self) -> S3Client:
        if self._s3 is not None:
            return self._s3
        with self._lock:
            if self._s3 is None:
                self._s3 = self._call("connect", self._new_client)
        return self._s3

    def _new_client(self) -> S3Client:
        config = Config(
            region_name=self.location.region,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            # one attempt per call: the retries are ours (see the module docstring)
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=max(10, self.options.upload_concurrency + 4),
            # S3-compatible stores answer path-style requests without any DNS set-up
            s3={"addressing_style": "path"} if self.location.endpoint else {},
            # the checksums are ours (s3_integrity): botocore's default ones are not
            # understood by every S3-compatible store
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        return session.client(
            "s3",
            region_name=self.location.region,
            endpoint_url=self.location.endpoint,
            config=config,
        )

    def _call(
        self,
        action: str,
        request: Callable[[], T],
        key: str | None = None,
        stop: threading.Event | None = None,
    ) -> T:
        """request(), retried while it fails transiently; SDK errors come out as
        NotFound, TransientError or PermanentError naming the repository."""

        def classify(exc: Exception) -> StorageError | None:
            if isinstance(exc, BotoCoreError | ClientError | _Damaged):
                return self._translate(exc, action, key)
            return None  # not the service's: a bug, raised as it is

        return self.retry.call(request, classify, stop)

    def _fail(self, what: str) -> str:
        return error_line(self.location.display, what)

    def _translate(self, exc: Exception, action: str, key: str | None = None) -> StorageError:
        if isinstance(exc, _Damaged):
            return TransientError(self._fail(f"{action}: damaged on the way ({exc})"))
        if isinstance(exc, ClientError):
            return self._translate_client_error(exc, action, key)
        return self._translate_transport_error(exc, action)

    def _translate_transport_error(self, exc: Exception, action: str) -> StorageError:
        where = self.location.endpoint or "S3"
        if isinstance(exc, NoCredentialsError):
            return PermanentError(
                self._fail(
                    "no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use an instance role)"
                )
            )
        if isinstance(exc, PartialCredentialsError | ProfileNotFound | CredentialRetrievalError):
            return PermanentError(self._fail(f"cannot load the AWS credentials: {_short(exc)}"))
        if isinstance(exc, SSLError):
            return PermanentError(
                self._fail(f"TLS failure talking to {where}: check the endpoint's certificate")
            )
        if isinstance(exc, SdkConnectionError | HTTPClientError | IncompleteReadError | OSError):
            return TransientError(self._fail(f"{action}: cannot reach {where} ({_short(exc)})"))
        return PermanentError(self._fail(f"{action} failed: {_short(exc)}"))

    def _translate_client_error(
        self, exc: ClientError, action: str, key: str | None
    ) -> StorageError:
        code = _error_code(exc)
        status = _http_status(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        bucket = self.location.bucket
        if code in NOT_FOUND_CODES and key is not None:
            return NotFound(f"{self.location.display}/{key} does not exist")
        if code == "NoSuchBucket" or (code in NOT_FOUND_CODES and key is None):
            return PermanentError(
                self._fail(f"the bucket {bucket} does not exist (create it, or fix the URL)")
            )
        if code in NOT_IMPLEMENTED_CODES:
            return PermanentError(self._fail(f"{action}: the endpoint does not support it"))
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientError(self._fail(f"{action}: S3 is busy or failing ({code})"))
        return PermanentError(self._fail(self._permanent_reason(exc, code, message, action)))

    def _permanent_reason(self, exc: ClientError, code: str, message: str, action: str) -> str:
        if code == "InvalidAccessKeyId":
            return "the access key is not valid (check AWS_ACCESS_KEY_ID or the profile)"
        if code == "SignatureDoesNotMatch":
            return "the secret key does not match the access key (check AWS_SECRET_ACCESS_KEY)"
        if code in BAD_TOKEN_CODES:
            return "the session token has expired or is not valid (refresh the credentials)"
        if code in ACCESS_DENIED_CODES:
            return f"access denied to {action} (check the credentials / IAM policy)"
        if code in WRONG_REGION_CODES:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            region = headers.get("x-amz-bucket-region")
            where = f"region {region}" if region else "another region"
            return f"the bucket is in {where}: set region= in the repository URL"
        if code == "RequestTimeTooSkewed":
            return "this machine's clock is off by more than 15 minutes: fix it (NTP)"
        if code == "InvalidObjectState":
            return f"{action}: the object is archived (e.g. GLACIER): restore it first"
        if code == "InvalidStorageClass":
            return f"{action}: the storage class is not valid here (check storage_class)"
        if code.startswith("KMS.") or "KMS" in code:
            return f"{action}: KMS refused ({message}); check kms_key_id and the key policy"
        if code == "InvalidRequest" and "objectlock" in message.lower().replace(" ", ""):
            # "Bucket is missing Object Lock Configuration" (moto: "ObjectLockConfiguration")
            return (
                f"cannot {action}: the bucket {self.location.bucket} has no Object Lock "
                "(enable it on the bucket)"
            )
        return f"{action} failed: {code}: {one_line(message)}"

    # -- bucket features --

    def _bucket_features(self) -> _BucketFeatures:
        if self._features is None:
            status = self._versioning_status()
            self._features = _BucketFeatures(
                versioning=status == "Enabled",
                keeps_versions=status in ("Enabled", "Suspended"),
                object_lock=self._object_lock_enabled(),
            )
        return self._features

    def _versioning_status(self) -> str | None:
        client = self._client()

        def request() -> str | None:
            try:
                reply = client.get_bucket_versioning(Bucket=self.location.bucket)
            except ClientError as exc:
                if _error_code(exc) in NOT_IMPLEMENTED_CODES:
                    return None
                raise
            return reply.get("Status")

        status = self._call("check the bucket's versioning", request)
        self._bucket_exists = True
        return status

    def _object_lock_enabled(self) -> bool:
        client = self._client()

        def request() -> bool:
            try:
                reply = client.get_object_lock_configuration(Bucket=self.location.bucket)
            except ClientError as exc:
                code = _error_code(exc)
                if code == "ObjectLockConfigurationNotFoundError" or code in NOT_IMPLEMENTED_CODES:
                    return False
                raise
            return reply.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

        return self._call("check the bucket's Object Lock", request)

    def _ensure_bucket_exists(self) -> None:
        """A HEAD answers a bare 404 both for a missing key and a missing bucket: ask once."""
        if self._bucket_exists:
            return
        client = self._client()
        self._call("open the bucket", lambda: client.head_bucket(Bucket=self.location.bucket))
        self._bucket_exists = True

    # -- writing --

    def _write_settings(self, key: str) -> dict[str, Any]:
        """Storage class, server-side encryption and retention of a new object by its kind:
        metadata stays STANDARD and never locked, since locks and markers must be deletable."""
        options = self.options
        kind = self._object_kind(key)
        settings: dict[str, Any] = {}
        storage_class = {
            "data": options.storage_class,
            "wal": options.wal_storage_class or options.storage_class,
            "metadata": None,
        }[kind]
        if storage_class:
            settings["StorageClass"] = storage_class
        if kind == "data":
            # the lifecycle rules of deploy/terraform act on this tag (see cloud-storage.md)
            settings["Tagging"] = f"{TIER_TAG}={UPLOAD_TIER}"
        if options.server_side_encryption:
            settings["ServerSideEncryption"] = options.server_side_encryption
            if options.server_side_encryption == "aws:kms" and options.kms_key_id:
                settings["SSEKMSKeyId"] = options.kms_key_id
        if options.object_lock_days and kind != "metadata":
            self._require_object_lock()
            settings["ObjectLockMode"] = options.object_lock_mode
            settings["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=options.object_lock_days
            )
        return settings

    def _require_object_lock(self) -> None:
        if not self._bucket_features().object_lock:
            raise PermanentError(
                self._fail(
                    f"object_lock_days is set but the bucket {self.location.bucket} has no "
                    "Object Lock (enable it on the bucket, or unset object_lock_days)"
                )
            )

    def _put_single(
        self,
        key: str,
        object_key: str,
        data: bytes,
        settings: dict[str, Any],
        if_absent: bool = False,
    ) -> _SentObject:
        digest = self.integrity.digest(data)
        client = self._client()
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}

        def send() -> Any:
            try:
                reply = client.put_object(
                    Bucket=self.location.bucket,
                    Key=object_key,
                    Body=data,
                    **self.integrity.upload_arguments(digest),
                    **settings,
                    **condition,
                )
            except ClientError as exc:
                if if_absent and _error_code(exc) in ("PreconditionFailed", "412"):
                    raise AlreadyExists(f"{self.location.display}/{key} exists already") from None
                raise
            problem = self.integrity.reply_problem(reply, digest)
            if problem is not None:
                raise _Damaged(problem)
            return reply

        reply = self._call(f"write {key}", send)
        self._bucket_exists = True
        return _SentObject(len(data), self.integrity.single_checksum(digest), _version_id(reply))

    def _put_multipart(
        self,
        key: str,
        object_key: str,
        first: Pieces,
        rest: PartSplitter,
        settings: dict[str, Any],
    ) -> _SentObject:
        client = self._client()
        started = self._call(
            f"start the upload of {key}",
            lambda: client.create_multipart_upload(
                Bucket=self.location.bucket,
                Key=object_key,
                **self.integrity.start_arguments(),
                **settings,
            ),
        )
        self._bucket_exists = True
        upload_id = started["UploadId"]
        try:
            parts = self._upload_parts(key, object_key, upload_id, first, rest)
            reply = self._call(
                f"complete the upload of {key}",
                lambda: client.complete_multipart_upload(
                    Bucket=self.location.bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [self.integrity.part_entry(p) for p in parts]},
                ),
            )
        except BaseException:
            # also on KeyboardInterrupt: S3 would keep (and bill) the parts otherwise
            self._abort_upload_quietly(key, object_key, upload_id)
            raise
        size = sum(part.size for part in parts)
        return _SentObject(size, self.integrity.multipart_checksum(parts), _version_id(reply))

    def _upload_parts(
        self,
        key: str,
        object_key: str,
        upload_id: str,
        first: Pieces,
        rest: PartSplitter,
    ) -> UploadedParts:
        def upload(number: int, data: bytes, stop: threading.Event) -> SentPart:
            return self._upload_part(key, object_key, upload_id, number, data, stop)

        uploads = _PartUploads(upload, self.options.upload_concurrency)
        failed = True
        try:
            uploads.add(first)
            while rest.has_more():
                if uploads.count >= MAX_PARTS:
                    raise PermanentError(
                        self._fail(
                            f"{key} is larger than {MAX_PARTS} parts of "
                            f"{self.options.part_size >> 20} MiB: raise part_size_mb"
                        )
                    )
                uploads.add(rest.next_part())
            parts = uploads.finish()
            failed = False
            return parts
        finally:
            uploads.close(failed)

    def _upload_part(
        self,
        key: str,
        object_key: str,
        upload_id: str,
        number: int,
        data: bytes,
        stop: threading.Event,
    ) -> SentPart:
        if stop.is_set():
            raise Cancelled()
        digest = self.integrity.digest(data)
        client = self._client()

        def send() -> str:
            reply = client.upload_part(
                Bucket=self.location.bucket,
                Key=object_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                **self.integrity.upload_arguments(digest),
            )
            # a damaged part is caught here, where sending it again is cheap and nothing
            # is visible yet
            problem = self.integrity.reply_problem(reply, digest)
            if problem is not None:
                raise _Damaged(problem)
            return str(reply["ETag"])

        etag = self._call(f"upload part {number} of {key}", send, stop=stop)
        return SentPart(number, etag, digest, len(data))

    def _abort_upload_quietly(self, key: str, object_key: str, upload_id: str) -> None:
        try:
            self._abort_upload(object_key, upload_id)
        except Exception as exc:
            # the failure being raised matters more; the next locked run removes it (see
            # pending_uploads)
            log.warning("could not abort the failed upload of %s: %s", key, exc)

    def _abort_upload(self, object_key: str, upload_id: str) -> None:
        client = self._client()

        def request() -> None:
            try:
                client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=object_key, UploadId=upload_id
                )
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":  # already aborted or completed
                    raise

        self._call(f"abort the upload of {self._key_of(object_key)}", request)

    def _multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        client = self._client()
        markers: dict[str, str] = {}
        while True:
            arguments: dict[str, Any] = {
                "Bucket": self.location.bucket,
                "Prefix": self.location.prefix + prefix,
                **markers,
            }
            page = self._call(
                "list incomplete uploads", partial(client.list_multipart_uploads, **arguments)
            )
            for upload in page.get("Uploads", []):
                yield upload["Key"], upload["UploadId"], upload["Initiated"]
            if not page.get("IsTruncated"):
                return
            markers = {
                "KeyMarker": page.get("NextKeyMarker", ""),
                "UploadIdMarker": page.get("NextUploadIdMarker", ""),
            }

    def _verify(
        self, key: str, object_key: str, sent: _SentObject, settings: dict[str, Any]
    ) -> ObjectInfo:
        """Compare what S3 stored with what was sent: size and checksum (see s3_integrity).
        A damaged object is deleted, never left under its key."""
        head = self._head(key, object_key, sent.version_id, self.integrity.head_arguments())
        size = head["ContentLength"]
        problem = None
        if size != sent.size:
            problem = f"S3 stored {size} bytes, {sent.size} were sent"
        else:
            problem = self.integrity.head_problem(head, sent.checksum)
        if problem is not None:
            outcome = "removed" if self._discard(key, object_key, sent.version_id) else "kept"
            raise PermanentError(
                self._fail(f"{key} was stored damaged ({problem}) and {outcome}: write it again")
            )
        if "ObjectLockMode" in settings and not head.get("ObjectLockMode"):
            self._set_retention(key, object_key, sent.version_id, settings)
        return ObjectInfo(key, size, head["LastModified"])

    def _set_retention(
        self, key: str, object_key: str, version_id: str | None, settings: dict[str, Any]
    ) -> None:
        """Some stores (moto, some S3-compatible ones) drop the retention given when a
        multipart upload starts, where S3 keeps it: set it on the stored version."""
        client = self._client()
        arguments: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Key": object_key,
            "Retention": {
                "Mode": settings["ObjectLockMode"],
                "RetainUntilDate": settings["ObjectLockRetainUntilDate"],
            },
        }
        if version_id is not None:
            arguments["VersionId"] = version_id
        self._call(
            f"set the retention of {key}", lambda: client.put_object_retention(**arguments), key=key
        )

    def _discard(self, key: str, object_key: str, version_id: str | None) -> bool:
        client = self._client()
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Key": object_key}
        if version_id is not None:
            arguments["VersionId"] = version_id
        try:
            self._call(f"delete {key}", lambda: client.delete_object(**arguments), key=key)
        except StorageError as exc:
            log.warning("could not remove the damaged %s: %s", key, exc)
            return False
        return True

    # -- reading --

    def _head(
        self,
        key: str,
        object_key: str,
        version_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        client = self._client()
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Key": object_key}
        arguments.update(extra or {})
        if version_id is not None:
            arguments["VersionId"] = version_id
        try:
            head = self._call(f"stat {key}", lambda: client.head_object(**arguments), key=key)
        except NotFound:
            self._ensure_bucket_exists()
            raise
        self._bucket_exists = True
        return head

    def _get_object(self, object_key: str, byte_range: str | None, etag: str | None = None) -> Any:
        """get_object, or None where the range starts past the end of the object."""
        arguments: dict[str, Any] = {"Bucket": self.location.bucket, "Key": object_key}
        if byte_range is not None:
            arguments["Range"] = byte_range
        if etag is not None:
            arguments["IfMatch"] = etag
        try:
            return self._client().get_object(**arguments)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "InvalidRange":
                return None
            if code in ("PreconditionFailed", "412") and etag is not None:
                key = self._key_of(object_key)
                raise PermanentError(
                    self._fail(f"{key} was replaced while being read: read it again")
                ) from None
            raise

    def _open_body(self, key: str, offset: int, length: int, etag: str) -> StreamingBody:
        """The rest of an object being read, from the same version (or a clear error)."""
        object_key = self._object_key(key)
        reply = self._call(
            f"read {key}",
            lambda: self._get_object(object_key, _byte_range(offset, length), etag),
            key=key,
        )
        if reply is None:
            raise PermanentError(self._fail(f"{key} shrank while being read: read it again"))
        body: StreamingBody = reply["Body"]
        return body

    # -- deleting every version --

    def _delete_every_version(self, key: str, object_key: str) -> None:
        versions = self._versions_of(object_key)
        # the current version last: a refused delete then leaves the object as it was, rather
        # than uncovering an older version under the key
        for version_id, _latest in sorted(versions, key=lambda version: version[1]):
            self._delete_version(key, object_key, version_id)

    def _versions_of(self, object_key: str) -> Versions:
        """(version id, is latest) of every version and delete marker of exactly object_key."""
        client = self._client()
        found: Versions = []
        markers: dict[str, str] = {}
        while True:
            arguments: dict[str, Any] = {
                "Bucket": self.location.bucket,
                "Prefix": object_key,
                **markers,
            }
            page = self._call(
                f"list the versions of {self._key_of(object_key)}",
                partial(client.list_object_versions, **arguments),
            )
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if entry["Key"] == object_key:
                    found.append((entry["VersionId"], entry["IsLatest"]))
            # versions come in key order and object_key sorts first among the keys it prefixes
            if not page.get("IsTruncated") or page.get("NextKeyMarker") != object_key:
                return found
            markers = {
                "KeyMarker": page["NextKeyMarker"],
                "VersionIdMarker": page.get("NextVersionIdMarker", ""),
            }

    def _delete_version(self, key: str, object_key: str, version_id: str) -> None:
        client = self._client()
        try:
            self._call(
                f"delete {key}",
                lambda: client.delete_object(
                    Bucket=self.location.bucket, Key=object_key, VersionId=version_id
                ),
                key=key,
            )
        except NotFound:
            return  # deleted meanwhile
        except PermanentError as refused:
            raise self._explain_locked(key, object_key, version_id) or refused from None

    def _explain_locked(self, key: str, object_key: str, version_id: str) -> PermanentError | None:
        """Why a version refused deletion, where its retention or legal hold says so."""
        try:
            head = self._head(key, object_key, version_id)
        except StorageError:
            return None
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return PermanentError(
                self._fail(f"{key} is under a legal hold: release the hold to delete it")
            )
        until = head.get("ObjectLockRetainUntilDate")
        if until is not None and until > datetime.now(UTC):
            mode = head.get("ObjectLockMode", "")
            return PermanentError(
                self._fail(
                    f"{key} is under Object Lock ({mode}) until "
                    f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC: it can be deleted after that"
                )
            )
        return None


# --- helpers -------------------------------------------------------------------------------


def _byte_range(offset: int, length: int | None) -> str | None:
    if length is None:
        return f"bytes={offset}-" if offset else None
    return f"bytes={offset}-{offset + length - 1}"


def _version_id(reply: Any) -> str | None:
    """The version a write created; "null" (an unversioned bucket) names none worth asking
    for, and some S3-compatible stores refuse it as a version id."""
    version = reply.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def _error_code(exc: ClientError) -> str:
    code = exc.response.get("Error", {}).get("Code")
    return str(code) if code else str(_http_status(exc))


def _http_status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else 0


def _short(exc: BaseException) -> str:
    """One line of an SDK or socket error, never a traceback."""
    return one_line(exc) or type(exc).__name__
