"""Google Cloud Storage backend: gs://BUCKET/PREFIX, keys stored under PREFIX/.

Large objects go up as one resumable upload, sent in chunks of `part_size` while the next
chunk is gathered from the producer; the object only exists once the last chunk lands, so
readers never see a partial one. Small objects are one request. Every write is verified
against the size and crc32c the service reports before it returns.

The SDK (google-cloud-storage, the `gcs` extra) is imported when the first backend is made:
this module itself is only imported for gs:// URLs. The SDK's own retries are off
(`retry=None` on every call) and the raw requests (chunks, downloads) go through a plain
authorized session, so retries happen in one place only (storage/retry.py).

Why a resumable-upload client of our own rather than the SDK's (Blob.upload_from_file with
a chunk_size, or its ResumableUpload), measured with bench/bench_gcs_upload.py against
gcp-storage-emulator, 16 MiB chunks, a 1 GiB stream from a generator:
- memory: both stay bounded whatever the size; peak RSS 80.6 MiB here, 94.9 MiB for the
  SDK fed by a file-like view of the generator (the same figures for a 64 MiB stream);
- integrity: both send the crc32c of the whole object with the last chunk (GCS refuses
  a mismatch; the emulator accepts one, tried with a wrong X-Goog-Hash), and an
  interrupted upload leaves no object either way; the SDK compares the crc32c only once
  the object exists and leaves it there (read in its code), where _verified() removes
  it; an exclusive create could pass ifGenerationMatch=0 to either;
- retries: with the SDK's own retries off (retry=None, so that max_attempts is the one
  policy), one 503 on the third chunk failed the SDK's whole upload of 64 MiB, and its
  error quoted the session URL (which lets anyone write to the object); here the chunk is
  resent from what the service kept. Recovering in the SDK means its private
  google.cloud.storage._media module (google-resumable-media is deprecated) and a stream
  that can seek back into the last chunk;
- throughput: the SDK reads a chunk, then sends it; here the next chunk is gathered from
  the producer (compression, encryption) while one is sent. 146.7 s against 161.0 s for
  1 GiB, both held back by the emulator's speed.
So the client below stays."""

from __future__ import annotations

import base64
import importlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO, Literal, NamedTuple, TypeVar, cast
from urllib.parse import quote, unquote, urlsplit

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
from lifeboat.storage.capabilities import ExclusiveCreate, holding
from lifeboat.storage.options import KeyClassifier, StorageOptions, every_key_is_data
from lifeboat.storage.parts import PartSplitter, Pieces, join_pieces
from lifeboat.storage.resuming import ResumingReader, Truncated
from lifeboat.storage.retry import Retry, error_line, one_line
from lifeboat.util.crc32c import Crc32c

T = TypeVar("T")

GCS_ENDPOINT = "https://storage.googleapis.com"
EMULATOR_HOST_VARIABLE = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT_VARIABLE = "GOOGLE_CLOUD_PROJECT"
DEFAULT_EMULATOR_PROJECT = "lifeboat"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
CONTENT_TYPE = "application/octet-stream"

# every chunk of a resumable upload but the last must be a multiple of this
CHUNK_ALIGNMENT = 256 * 1024
# (connect, read) seconds; a read timeout covers the wait for each response, not a whole body
TIMEOUT = (10.0, 120.0)
READ_BUFFER_SIZE = 256 * 1024
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0

RESUME_INCOMPLETE = 308
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
UPLOADED_RANGE = re.compile(r"bytes=0-(\d+)")

FailureKind = Literal["transient", "not_found", "unauthenticated", "denied", "retention", "refused"]


class _Sdk(NamedTuple):
    """The parts of Google's SDK (the optional `gcs` extra) used here. It is typed only in
    part, so its objects are handled as Any."""

    storage: Any
    auth: Any
    anonymous_credentials: Any
    authorized_session: Any
    auth_errors: Any
    api_errors: Any
    requests_errors: Any
    urllib3_errors: Any


_loaded_sdk: _Sdk | None = None


def _load_sdk() -> _Sdk:
    """Import the SDK once. Called when a backend is made, so that a missing package
    surfaces while the repository is opened, where the registry explains how to install it."""
    global _loaded_sdk
    if _loaded_sdk is None:
        load = importlib.import_module
        _loaded_sdk = _Sdk(
            storage=load("google.cloud.storage"),
            auth=load("google.auth"),
            anonymous_credentials=load("google.auth.credentials").AnonymousCredentials,
            authorized_session=load("google.auth.transport.requests").AuthorizedSession,
            auth_errors=load("google.auth.exceptions"),
            api_errors=load("google.api_core.exceptions"),
            requests_errors=load("requests.exceptions"),
            urllib3_errors=load("urllib3.exceptions"),
        )
    return _loaded_sdk


class _HttpFailure(Exception):
    """An unexpected answer of the service to one of the raw requests."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class _UploadSessionGone(Exception):
    """The resumable session expired or was cancelled: the write must start over."""


def _status_kind(status: int, detail: str) -> FailureKind:
    if status in TRANSIENT_STATUSES:
        return "transient"
    if status in (404, 410):
        return "not_found"
    if status == 401:
        return "unauthenticated"
    if status == 403:
        lowered = detail.lower()
        return "retention" if "retention" in lowered or "hold" in lowered else "denied"
    return "refused"


def _classify(exc: BaseException) -> tuple[FailureKind, str] | None:
    """What a failure of the SDK or of a raw request means; None for anything else (a bug),
    which then propagates unchanged. Details never quote URLs: a resumable session's URL
    is enough to write to the object."""
    sdk = _load_sdk()
    api_errors, auth_errors = sdk.api_errors, sdk.auth_errors
    requests_errors, urllib3_errors = sdk.requests_errors, sdk.urllib3_errors
    if isinstance(exc, _HttpFailure):
        return _status_kind(exc.status, exc.detail), exc.detail
    if isinstance(exc, api_errors.GoogleAPICallError):
        detail = one_line(exc.message)
        if exc.code is None:
            return "transient", detail
        return _status_kind(int(exc.code), detail), detail
    if isinstance(exc, auth_errors.DefaultCredentialsError):
        return "unauthenticated", "no Google credentials were found"
    if isinstance(exc, auth_errors.RefreshError):
        kind: FailureKind = "transient" if getattr(exc, "retryable", False) else "unauthenticated"
        return kind, f"cannot obtain an access token ({one_line(exc)})"
    if isinstance(exc, auth_errors.TransportError):
        return "transient", "cannot reach the token service"
    if isinstance(exc, auth_errors.GoogleAuthError):
        return "unauthenticated", one_line(exc)
    if isinstance(exc, requests_errors.Timeout | urllib3_errors.TimeoutError):
        return "transient", "the request timed out"
    if isinstance(exc, Truncated):
        return "transient", "a transfer stopped short"
    if isinstance(
        exc,
        requests_errors.ConnectionError
        | requests_errors.ChunkedEncodingError
        | urllib3_errors.ProtocolError
        | ConnectionError
        | TimeoutError,
    ):
        return "transient", "the connection failed"
    return None


def _crc32c_text(checksum: Crc32c) -> str:
    """A crc32c the way the service reports it: base64 of the big-endian 4 bytes."""
    return base64.b64encode(checksum.digest("big")).decode("ascii")


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def _aligned_part_size(part_size: int) -> int:
    return max(CHUNK_ALIGNMENT, part_size - part_size % CHUNK_ALIGNMENT)


class _Part:
    """Consecutive bytes of the object, kept as the producer's pieces: joining them would
    briefly hold the part twice."""

    def __init__(self, pieces: Pieces) -> None:
        self.pieces = pieces
        self.size = sum(len(piece) for piece in pieces)

    def joined(self) -> bytes:
        return b"".join(self.pieces)

    def body(self, skip: int) -> _PartBody | bytes:
        """A request body of the part's bytes from `skip` on."""
        if skip >= self.size:
            return b""  # requests would send an empty stream chunked
        return _PartBody(self.pieces, skip, self.size - skip)


class _PartBody:
    """A request body read from pieces without copying them together: requests sends a
    file-like object with a length as a Content-Length body, read in blocks."""

    def __init__(self, pieces: Pieces, skip: int, length: int) -> None:
        self._pieces = iter(pieces)
        self._length = length
        self._current = memoryview(b"")
        self._skip = skip

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(CHUNK_ALIGNMENT):
            yield block

    def read(self, size: int = -1) -> bytes:
        while not self._current:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            # a view, so that reading a block copies that block only
            self._current = memoryview(piece)[self._skip :]
            self._skip = max(0, self._skip - len(piece))
        size = len(self._current) if size < 0 else size
        block, self._current = self._current[:size], self._current[size:]
        return bytes(block)


class _ResponseBody:
    """A streamed download's body, read as it arrives (identity encoding: no decoding)."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def read(self, size: int) -> bytes:
        data: bytes = self._response.raw.read(size)
        return data

    def close(self) -> None:
        self._response.close()


class GcsStorage(ExclusiveCreate):
    """A repository in a Google Cloud Storage bucket (or an emulator's)."""

    def __init__(
        self,
        url: str,
        options: StorageOptions,
        *,
        emulator_host: str | None = None,
        classify: KeyClassifier = every_key_is_data,
    ) -> None:
        self._object_kind = classify
        self._bucket_name, prefix = _parse_url(url)
        self.url = f"gs://{self._bucket_name}/{prefix}" if prefix else f"gs://{self._bucket_name}"
        self._root = f"{prefix}/" if prefix else ""
        self._options = options
        self.retry = Retry(options.max_attempts, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        self._part_size = _aligned_part_size(options.part_size)
        self.capabilities = Capabilities(part_size=self._part_size, max_parallelism=4)
        self._emulator_host = emulator_host or os.environ.get(EMULATOR_HOST_VARIABLE) or None
        self._endpoint = _endpoint(self._emulator_host)
        self._connect_lock = threading.Lock()
        self._sdk_client: Any = None
        self._http_session: Any = None
        self._bucket_known = False
        self._sdk = _load_sdk()

    # --- connection ------------------------------------------------------------------

    def _client(self) -> Any:
        """The SDK's client, for object metadata, listings, deletes and small uploads."""
        return self._connection()[0]

    def _http(self) -> Any:
        """The authorized requests session, for upload chunks and downloads."""
        return self._connection()[1]

    def _connection(self) -> tuple[Any, Any]:
        """Made on first use, so that opening a repository costs no network round trip."""
        with self._connect_lock:
            if self._sdk_client is None:
                self._sdk_client, self._http_session = self._connect()
            return self._sdk_client, self._http_session

    def _connect(self) -> tuple[Any, Any]:
        project: str | None
        if self._emulator_host:
            credentials = self._sdk.anonymous_credentials()
            project = os.environ.get(EMULATOR_PROJECT_VARIABLE) or DEFAULT_EMULATOR_PROJECT
        else:
            credentials, project = self._default_credentials()
        client = self._sdk.storage.Client(
            project=project,
            credentials=credentials,
            client_options={"api_endpoint": self._endpoint},
        )
        # Recent SDKs fetch bucket metadata in background threads only to label tracing
        # spans: extra requests outside the retry policy, needing storage.buckets.get that
        # object-only roles lack. The SDK skips the cache when it is unset.
        if getattr(client, "_bucket_metadata_cache", None) is not None:
            client._bucket_metadata_cache = None
        return client, self._sdk.authorized_session(credentials)

    def _default_credentials(self) -> tuple[Any, str | None]:
        try:
            credentials, project = self._sdk.auth.default(scopes=list(SCOPES))
        except self._sdk.auth_errors.DefaultCredentialsError:
            raise PermanentError(
                self._fail(
                    "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS "
                    "to a service account key file or run `gcloud auth application-default login`"
                )
            ) from None
        return credentials, project

    def _bucket(self) -> Any:
        return self._client().bucket(self._bucket_name)

    def _name(self, key: str) -> str:
        return self._root + validate_key(key)

    # --- failures --------------------------------------------------------------------

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one request, retrying transient failures; a 404 becomes NotFound for the
        caller to interpret (missing object or missing bucket)."""
        return self.retry.call(operation, self._classifier(what))

    def _classifier(self, what: str) -> Callable[[Exception], StorageError | None]:
        """What a failure of a request to `what` means; None for an exception that is not
        the service's (a bug), which propagates as it is."""

        def classify(exc: Exception) -> StorageError | None:
            failure = _classify(exc)
            return None if failure is None else self._error(*failure, what)

        return classify

    def _error(self, kind: FailureKind, detail: str, what: str) -> StorageError:
        prefix = f"cannot {what}"
        if kind == "transient":
            return TransientError(
                self._fail(
                    f"{prefix}: {detail}: check the network and the service's status, then retry"
                )
            )
        if kind == "not_found":
            return NotFound(self._fail(f"{prefix}: not found ({detail})"))
        if kind == "unauthenticated":
            return PermanentError(
                self._fail(
                    f"{prefix}: the credentials were refused ({detail}): set "
                    "GOOGLE_APPLICATION_CREDENTIALS or run "
                    "`gcloud auth application-default login`"
                )
            )
        if kind == "denied":
            return PermanentError(
                self._fail(
                    f"{prefix}: access denied ({detail}): give this account object read and "
                    f"write access to bucket {self._bucket_name} (e.g. roles/storage.objectUser)"
                )
            )
        if kind == "retention":
            return PermanentError(
                self._fail(
                    f"{prefix}: the bucket's retention policy or an object hold forbids it "
                    f"({detail}): wait until the retention period ends or release the hold"
                )
            )
        return PermanentError(
            self._fail(
                f"{prefix}: the service refused the request ({detail}): "
                "check the repository's url and options"
            )
        )

    def _fail(self, text: str) -> str:
        return error_line(self.url, text)

    def _missing_bucket(self) -> PermanentError:
        return PermanentError(
            self._fail(
                f"bucket {self._bucket_name} does not exist: create it or correct "
                "the repository url"
            )
        )

    def _raise_if_bucket_missing(self) -> None:
        """Tell a missing bucket from a missing object after a 404. Listing one object needs
        only object permissions (bucket metadata would need more); a credential that may
        not list cannot tell, and the object is then taken as the missing one."""
        if self._bucket_known:
            return

        def probe() -> None:
            iterator = self._client().list_blobs(
                self._bucket_name, max_results=1, timeout=TIMEOUT, retry=None
            )
            next(iter(iterator.pages), None)

        try:
            self._call(f"list bucket {self._bucket_name}", probe)
        except NotFound:
            raise self._missing_bucket() from None
        except PermanentError:
            pass
        self._bucket_known = True

    def _object_not_found(self, key: str) -> NotFound:
        self._raise_if_bucket_missing()
        return NotFound(f"{self.url}/{key} does not exist")

    # --- write -----------------------------------------------------------------------

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        name = self._name(key)
        parts = PartSplitter(chunks, self._part_size)
        first = parts.next_part()
        if not parts.has_more():
            return self._write_in_one_request(key, name, join_pieces(first))
        return self._write_resumable(key, name, first, parts)

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """One upload with ifGenerationMatch=0: the service answers 412 when any
        generation of the object exists. (Emulators may ignore the precondition; the
        repository lock checks for that before it relies on this.)"""
        name = self._name(key)
        try:
            return self._write_in_one_request(key, name, data, if_absent=True)
        except AlreadyExists:
            mine = holding(self, key, data)
            if mine is None:
                raise
            return mine

    def _storage_class(self, key: str) -> str | None:
        kind = self._object_kind(key)
        if kind == "data":
            return self._options.storage_class
        if kind == "wal":
            return self._options.wal_storage_class or self._options.storage_class
        return None

    def _new_blob(self, key: str, name: str) -> Any:
        blob = self._bucket().blob(name)
        storage_class = self._storage_class(key)
        if storage_class:
            blob.storage_class = storage_class
        return blob

    def _write_in_one_request(
        self, key: str, name: str, data: bytes, if_absent: bool = False
    ) -> ObjectInfo:
        checksum = Crc32c()
        checksum.update(data)
        expected_crc = _crc32c_text(checksum)
        # generation 0 matches only an object that does not exist
        condition = {"if_generation_match": 0} if if_absent else {}

        def upload() -> Any:
            blob = self._new_blob(key, name)
            # sent as object metadata: the service refuses the upload if the bytes differ
            blob.crc32c = expected_crc
            try:
                blob.upload_from_string(
                    data,
                    content_type=CONTENT_TYPE,
                    client=self._client(),
                    checksum=None,
                    timeout=TIMEOUT,
                    retry=None,
                    **condition,
                )
            except self._sdk.api_errors.PreconditionFailed:
                if not if_absent:
                    raise
                raise AlreadyExists(f"{self.url}/{key} exists already") from None
            return blob

        try:
            blob = self._call(f"upload {key}", upload)
        except NotFound:
            raise self._missing_bucket() from None
        stored = {
            "size": blob.size,
            "crc32c": blob.crc32c,
            "generation": blob.generation,
            "updated": blob.updated,
        }
        return self._verified(key, name, stored, len(data), expected_crc)

    def _write_resumable(
        self, key: str, name: str, first: Pieces, rest: PartSplitter
    ) -> ObjectInfo:
        upload_url = self._start_session(key, name)
        checksum = Crc32c()
        try:
            stored, size = self._send_parts(key, upload_url, first, rest, checksum)
        except BaseException:
            self._cancel_session(upload_url)
            raise
        return self._verified(key, name, stored, size, _crc32c_text(checksum))

    def _start_session(self, key: str, name: str) -> str:
        def create() -> str:
            blob = self._new_blob(key, name)
            url: str = blob.create_resumable_upload_session(
                content_type=CONTENT_TYPE,
                client=self._client(),
                timeout=TIMEOUT,
                checksum=None,
                retry=None,
            )
            return url

        try:
            return self._call(f"start uploading {key}", create)
        except NotFound:
            raise self._missing_bucket() from None

    def _send_parts(
        self, key: str, upload_url: str, first: Pieces, rest: PartSplitter, checksum: Crc32c
    ) -> tuple[dict[str, Any], int]:
        """Send full parts one at a time while the next is gathered from the producer
        (the service takes a session's chunks in order only), then the last one. Returns
        the stored object's resource and the number of bytes sent."""
        offset = 0
        part = _Part(first)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcs-upload") as sender:
            in_flight: Future[dict[str, Any] | None] | None = None
            sending = part
            while rest.has_more():
                for piece in part.pieces:
                    checksum.update(piece)
                if in_flight is not None:
                    in_flight.result()
                    # sent: let its bytes go (the caller still holds the first part's list)
                    sending.pieces.clear()
                in_flight = sender.submit(self._send_chunk, key, upload_url, part, offset, None)
                sending = part
                offset += part.size
                part = _Part(rest.next_part())
            if in_flight is not None:
                in_flight.result()
                sending.pieces.clear()
        for piece in part.pieces:
            checksum.update(piece)
        size = offset + part.size
        stored = self._send_chunk(key, upload_url, part, offset, size, _crc32c_text(checksum))
        assert stored is not None  # the last chunk always completes the upload
        return stored, size

    def _send_chunk(
        self,
        key: str,
        upload_url: str,
        part: _Part,
        offset: int,
        total: int | None,
        crc32c: str | None = None,
    ) -> dict[str, Any] | None:
        """Put the part at offset of the upload (total given for the last one). After a
        transient failure, asks the service how much it kept and sends only the rest.
        Returns the object's resource once the upload is complete."""
        end = offset + part.size
        persisted = offset
        failures = 0
        classify = self._classifier(f"upload {key}")
        while True:
            try:
                if failures:
                    state = self._session_state(upload_url)
                    if isinstance(state, dict):
                        return state
                    persisted = self._check_persisted(key, state, offset, end)
                if total is None and persisted == end:
                    return None
                body = part.body(persisted - offset)
                state = self._put_range(upload_url, body, persisted, end, total, crc32c)
            except _UploadSessionGone:
                raise PermanentError(
                    self._fail(
                        f"cannot upload {key}: the upload session expired or was "
                        "cancelled: retry the operation"
                    )
                ) from None
            except Exception as exc:
                failures += 1
                self.retry.after_failure(exc, failures, classify)
                continue
            if isinstance(state, dict):
                return state
            if total is None and state == end:
                return None
            if state <= persisted:
                failures += 1
                self.retry.after_failure(Truncated(), failures, classify)
            # the service may keep only part of a chunk: the rest goes in the next request
            persisted = self._check_persisted(key, state, offset, end)

    def _check_persisted(self, key: str, persisted: int, offset: int, end: int) -> int:
        if not offset <= persisted <= end:
            raise PermanentError(
                self._fail(
                    f"cannot upload {key}: the service reports {persisted} bytes "
                    f"received where {offset} to {end} were expected: retry the operation"
                )
            )
        return persisted

    def _put_range(
        self,
        upload_url: str,
        body: _PartBody | bytes,
        start: int,
        end: int,
        total: int | None,
        crc32c: str | None,
    ) -> dict[str, Any] | int:
        """PUT bytes [start, end) of the object."""
        if start == end:
            content_range = f"bytes */{'*' if total is None else total}"
        else:
            content_range = f"bytes {start}-{end - 1}/{'*' if total is None else total}"
        headers = {"Content-Range": content_range}
        if crc32c is not None:
            # lets the service refuse to create the object if the bytes differ
            headers["X-Goog-Hash"] = f"crc32c={crc32c}"
        response = self._http().put(upload_url, data=body, headers=headers, timeout=TIMEOUT)
        return self._session_answer(response)

    def _session_state(self, upload_url: str) -> dict[str, Any] | int:
        """How many bytes the service holds for the upload (or the object, if complete)."""
        response = self._http().put(
            upload_url, data=b"", headers={"Content-Range": "bytes */*"}, timeout=TIMEOUT
        )
        return self._session_answer(response)

    def _session_answer(self, response: Any) -> dict[str, Any] | int:
        status: int = response.status_code
        if status in (200, 201):
            resource: dict[str, Any] = response.json()
            return resource
        if status == RESUME_INCOMPLETE:
            match = UPLOADED_RANGE.fullmatch(response.headers.get("Range", ""))
            return int(match.group(1)) + 1 if match else 0
        if status in (404, 410, 499):
            raise _UploadSessionGone
        raise _HttpFailure(status, _response_detail(response))

    def _cancel_session(self, upload_url: str) -> None:
        """Best effort: an abandoned session holds no object and expires within a week."""
        try:
            self._http().delete(upload_url, timeout=(2.0, 5.0)).close()
        except Exception:
            pass

    def _verified(
        self, key: str, name: str, stored: dict[str, Any], size: int, expected_crc: str
    ) -> ObjectInfo:
        stored_size = int(stored.get("size") or 0)
        stored_crc = stored.get("crc32c")
        if stored_size == size and stored_crc == expected_crc:
            return ObjectInfo(key, size, _parse_time(stored.get("updated")))
        self._remove_generation(name, stored.get("generation"))
        raise PermanentError(
            self._fail(
                f"{key} was stored as {stored_size} bytes with crc32c {stored_crc} "
                f"but {size} bytes with crc32c {expected_crc} were sent; the object was "
                "removed: retry the operation"
            )
        )

    def _remove_generation(self, name: str, generation: object) -> None:
        """Remove a write that failed verification, and nothing a later write stored."""
        if generation is None:
            return
        try:
            self._bucket().delete_blob(
                name, if_generation_match=int(str(generation)), timeout=TIMEOUT, retry=None
            )
        except Exception:
            pass

    # --- read ------------------------------------------------------------------------

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        self._name(key)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"invalid range: offset {offset}, length {length}")
        if length == 0:
            self.stat(key)  # still NotFound for a missing key
            return io.BytesIO()
        stop = None if length is None else offset + length
        download = self._open_download(key, offset, stop, None)
        if download is None:  # nothing at or after the start offset
            return io.BytesIO()
        response, generation, end = download

        def reopen(position: int) -> _ResponseBody | None:
            again = self._open_download(key, position, end, generation)
            return None if again is None else _ResponseBody(again[0])

        def after_failure(exc: Exception, failures: int) -> None:
            self.retry.after_failure(exc, failures, self._classifier(f"read {key}"))

        stream = ResumingReader(
            _ResponseBody(response), offset, end, reopen, after_failure, READ_BUFFER_SIZE
        )
        return cast(BinaryIO, io.BufferedReader(stream, READ_BUFFER_SIZE))

    def _open_download(
        self, key: str, start: int, stop: int | None, generation: str | None
    ) -> tuple[Any, str | None, int | None] | None:
        """Start streaming bytes [start, stop) of the object. Returns the response, the
        generation being read and where its body ends; None when start is at or past
        the end of the object."""
        name = self._name(key)
        url = (
            f"{self._endpoint}/download/storage/v1/b/{quote(self._bucket_name, safe='')}"
            f"/o/{quote(name, safe='')}"
        )
        params = {"alt": "media"}
        if generation:
            params["generation"] = generation
        # identity: the stored bytes themselves, never a transcoded version
        headers = {"Accept-Encoding": "identity"}
        if start or stop is not None:
            headers["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"

        def request() -> Any:
            response = self._http().get(
                url, params=params, headers=headers, stream=True, timeout=TIMEOUT
            )
            if response.status_code == 416:
                response.close()
                return None
            if response.status_code not in (200, 206):
                detail = _response_detail(response)
                response.close()
                raise _HttpFailure(response.status_code, detail)
            return response

        try:
            response = self._call(f"read {key}", request)
        except NotFound:
            raise self._object_not_found(key) from None
        if response is None:
            return None
        if response.status_code == 200 and start:
            response.close()
            raise PermanentError(
                self._fail(
                    f"cannot read {key}: the service ignored the requested byte "
                    "range: check the repository url"
                )
            )
        length = response.headers.get("Content-Length")
        body_stop = start + int(length) if length is not None else stop
        return response, response.headers.get("x-goog-generation") or generation, body_stop

    # --- stat, list, delete ----------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)

        def fetch() -> Any:
            blob = self._bucket().blob(name)
            blob.reload(client=self._client(), timeout=TIMEOUT, retry=None)
            return blob

        try:
            blob = self._call(f"look up {key}", fetch)
        except NotFound:
            raise self._object_not_found(key) from None
        return ObjectInfo(key, int(blob.size or 0), _parse_time(blob.updated))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under prefix in key order (the service lists names in byte order, which
        the common root prefix keeps). An upload in progress is not an object yet."""
        token: str | None = None
        while True:
            blobs, token = self._list_page(prefix, token)
            for blob in blobs:
                key = blob.name[len(self._root) :]
                if key and not key.endswith("/"):  # skip folder placeholders of the console
                    yield ObjectInfo(key, int(blob.size or 0), _parse_time(blob.updated))
            if not token:
                return

    def _list_page(self, prefix: str, token: str | None) -> tuple[Sequence[Any], str | None]:
        def fetch() -> tuple[Sequence[Any], str | None]:
            iterator = self._client().list_blobs(
                self._bucket_name,
                prefix=self._root + prefix,
                page_token=token,
                fields="items(name,size,updated),nextPageToken",
                timeout=TIMEOUT,
                retry=None,
            )
            page = next(iter(iterator.pages), None)
            next_token: str | None = iterator.next_page_token
            return (tuple(page) if page is not None else ()), next_token

        try:
            return self._call(f"list {prefix or 'the repository'}", fetch)
        except NotFound:
            raise self._missing_bucket() from None

    def delete(self, key: str) -> None:
        name = self._name(key)

        def remove() -> None:
            self._bucket().delete_blob(name, timeout=TIMEOUT, retry=None)

        try:
            self._call(f"delete {key}", remove)
        except NotFound:
            self._raise_if_bucket_missing()


def _response_detail(response: Any) -> str:
    """The service's own one-line explanation of a failed request."""
    try:
        message = response.json()["error"]["message"]
    except Exception:
        message = response.reason or f"HTTP {response.status_code}"
    return one_line(message)


def _endpoint(emulator_host: str | None) -> str:
    """Where requests go: the service, or an emulator given as host:port or a URL."""
    if not emulator_host:
        return GCS_ENDPOINT
    host = emulator_host.rstrip("/")
    return host if "://" in host else f"http://{host}"


def _parse_url(url: str) -> tuple[str, str]:
    """gs://BUCKET/PREFIX -> (bucket, prefix without surrounding slashes)."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "gs" or not BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(
            f"repository URL {url!r} is not gs://BUCKET/PREFIX with a valid bucket name "
            "(lowercase letters, digits, '-', '_' and '.')"
        )
    prefix = unquote(parts.path).strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError:
            raise ConfigError(
                f"repository URL {url!r}: the prefix must not contain empty, '.' or '..' parts"
            ) from None
    return bucket, prefix
