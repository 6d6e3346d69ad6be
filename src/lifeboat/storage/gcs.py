"""Google Cloud Storage backend: gs://BUCKET/PREFIX, keys stored under PREFIX/.

Large objects go up as one resumable upload, sent in chunks of `part_size` while the next
chunk is gathered from the producer; the object only exists once the last chunk lands, so
readers never see a partial one. Small objects are one request. Every write is verified
against the size and crc32c the service reports before it returns.

google-cloud-storage is imported on first use only. Its own retries are switched off
(`retry=None` everywhere) and the raw requests go through a plain authorized session, so
each failure is retried exactly once here, with exponential backoff and full jitter."""

from __future__ import annotations

import base64
import io
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO, Literal, TypeVar, cast
from urllib.parse import quote, unquote, urlsplit

import google_crc32c

from lifeboat.errors import ConfigError
from lifeboat.storage.base import (
    Capabilities,
    NotFound,
    ObjectInfo,
    PermanentError,
    TransientError,
    validate_key,
)
from lifeboat.storage.options import StorageOptions, object_kind

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

FailureKind = Literal[
    "transient", "not_found", "unauthenticated", "denied", "retention", "refused"
]


class _HttpFailure(Exception):
    """An unexpected answer of the service to one of the raw requests."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class _UploadSessionGone(Exception):
    """The resumable session expired or was cancelled: the write must start over."""


class _Truncated(ConnectionError):
    """A download ended before the bytes its headers announced."""


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
    import requests
    import urllib3
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors

    if isinstance(exc, _HttpFailure):
        return _status_kind(exc.status, exc.detail), exc.detail
    if isinstance(exc, api_errors.GoogleAPICallError):
        detail = _one_line(exc.message)
        if exc.code is None:
            return "transient", detail
        return _status_kind(int(exc.code), detail), detail
    if isinstance(exc, auth_errors.DefaultCredentialsError):
        return "unauthenticated", "no Google credentials were found"
    if isinstance(exc, auth_errors.RefreshError):
        kind: FailureKind = "transient" if getattr(exc, "retryable", False) else "unauthenticated"
        return kind, f"cannot obtain an access token ({_one_line(exc)})"
    if isinstance(exc, auth_errors.TransportError):
        return "transient", "cannot reach the token service"
    if isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError):
        return "transient", "the request timed out"
    if isinstance(exc, _Truncated):
        return "transient", "the download ended early"
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.ProtocolError
        | ConnectionError
        | TimeoutError,
    ):
        return "transient", "the connection failed"
    return None


def _crc32c_text(checksum: google_crc32c.Checksum) -> str:
    """The base64 big-endian form in which the service reports crc32c."""
    return base64.b64encode(checksum.digest()).decode("ascii")


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def _aligned_part_size(part_size: int) -> int:
    return max(CHUNK_ALIGNMENT, part_size - part_size % CHUNK_ALIGNMENT)


class _Parts:
    """Cuts the producer's chunks into parts of exactly `part_size` bytes (the last one
    shorter), holding at most one part and one producer chunk. The producer's own errors
    come out of next_part() unchanged."""

    def __init__(self, chunks: Iterable[bytes], part_size: int) -> None:
        self._chunks = iter(chunks)
        self._part_size = part_size
        self._carry = b""
        self.exhausted = False

    def next_part(self) -> bytes:
        pieces = [self._carry] if self._carry else []
        size = len(self._carry)
        self._carry = b""
        while size < self._part_size and not self.exhausted:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.exhausted = True
                break
            # a bytearray or memoryview may be reused by the producer: keep a copy
            piece = chunk if isinstance(chunk, bytes) else bytes(chunk)
            missing = self._part_size - size
            if len(piece) > missing:
                piece, self._carry = piece[:missing], piece[missing:]
            pieces.append(piece)
            size += len(piece)
        return b"".join(pieces)


class _ObjectStream(io.RawIOBase):
    """The body of one download; a connection lost midway is reopened where it stopped,
    pinned to the same generation of the object."""

    def __init__(self, storage: GcsStorage, key: str, start: int, stop: int | None) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._position = start
        self._stop = stop
        self._generation: str | None = None
        self._response: Any = None
        self._open()

    def _open(self) -> None:
        download = self._storage._open_download(
            self._key, self._position, self._stop, self._generation
        )
        if download is None:  # nothing at or after the start offset
            self._stop = self._position
            return
        self._response, self._generation, self._stop = download

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        if self._stop is not None:
            wanted = min(wanted, self._stop - self._position)
        if wanted <= 0 or self._response is None:
            return 0
        failures = 0
        while True:
            try:
                data = self._response.raw.read(wanted)
                if not data and self._stop is not None:
                    raise _Truncated
            except Exception as exc:
                failures += 1
                self._storage._retry_or_raise(exc, failures, f"read {self._key}")
                self._response.close()
                self._open()
                continue
            buffer[: len(data)] = data
            self._position += len(data)
            return len(data)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()


class GcsStorage:
    """A repository in a Google Cloud Storage bucket (or an emulator's)."""

    def __init__(
        self, url: str, options: StorageOptions, *, emulator_host: str | None = None
    ) -> None:
        self._bucket_name, prefix = _parse_url(url)
        self.url = f"gs://{self._bucket_name}/{prefix}" if prefix else f"gs://{self._bucket_name}"
        self._root = f"{prefix}/" if prefix else ""
        self._options = options
        self._part_size = _aligned_part_size(options.part_size)
        self.capabilities = Capabilities(part_size=self._part_size, max_parallelism=4)
        self._emulator_host = emulator_host or os.environ.get(EMULATOR_HOST_VARIABLE) or None
        self._connect_lock = threading.Lock()
        self._sdk_client: Any = None
        self._session: Any = None
        self._endpoint = GCS_ENDPOINT
        self._bucket_known = False

    # --- connection ------------------------------------------------------------------

    def _connection(self) -> tuple[Any, Any]:
        """The SDK client and the authorized HTTP session, made on first use so that opening
        a repository costs no network round trip."""
        with self._connect_lock:
            if self._sdk_client is None:
                self._sdk_client, self._session = self._connect()
            return self._sdk_client, self._session

    def _connect(self) -> tuple[Any, Any]:
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import storage

        if self._emulator_host:
            from google.auth.credentials import AnonymousCredentials

            credentials: Any = AnonymousCredentials()
            project = os.environ.get(EMULATOR_PROJECT_VARIABLE) or DEFAULT_EMULATOR_PROJECT
            host = self._emulator_host.rstrip("/")
            self._endpoint = host if "://" in host else f"http://{host}"
        else:
            credentials, project = self._default_credentials()
        client = storage.Client(
            project=project,
            credentials=credentials,
            client_options={"api_endpoint": self._endpoint},
        )
        return client, AuthorizedSession(credentials)

    def _default_credentials(self) -> tuple[Any, str | None]:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, project = google.auth.default(scopes=list(SCOPES))
        except DefaultCredentialsError:
            raise PermanentError(
                f"{self.url}: no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS "
                "to a service account key file or run `gcloud auth application-default login`"
            ) from None
        return credentials, project

    def _bucket(self) -> Any:
        return self._connection()[0].bucket(self._bucket_name)

    def _name(self, key: str) -> str:
        return self._root + validate_key(key)

    # --- failures --------------------------------------------------------------------

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one request, retrying transient failures; a 404 becomes NotFound for the
        caller to interpret (missing object or missing bucket)."""
        failures = 0
        while True:
            try:
                return operation()
            except Exception as exc:
                failures += 1
                self._retry_or_raise(exc, failures, what)

    def _retry_or_raise(self, exc: Exception, failures: int, what: str) -> None:
        """Sleep before the next attempt if the failure is transient and attempts are left;
        otherwise raise the error the failure stands for."""
        failure = _classify(exc)
        if failure is None:
            raise exc
        kind, detail = failure
        if kind == "transient" and failures < self._options.max_attempts:
            ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
            time.sleep(random.uniform(0, ceiling))
            return
        raise self._error(kind, what, detail, failures) from exc

    def _error(self, kind: FailureKind, what: str, detail: str, attempts: int) -> Exception:
        prefix = f"{self.url}: cannot {what}"
        if kind == "transient":
            return TransientError(
                f"{prefix}: {detail} (gave up after {attempts} attempts): "
                "check the network and the service's status, then retry"
            )
        if kind == "not_found":
            return NotFound(f"{prefix}: not found ({detail})")
        if kind == "unauthenticated":
            return PermanentError(
                f"{prefix}: the credentials were refused ({detail}): set "
                "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`"
            )
        if kind == "denied":
            return PermanentError(
                f"{prefix}: access denied ({detail}): give this account object read and write "
                f"access to bucket {self._bucket_name} (e.g. roles/storage.objectUser)"
            )
        if kind == "retention":
            return PermanentError(
                f"{prefix}: the bucket's retention policy or an object hold forbids it "
                f"({detail}): wait until the retention period ends or release the hold"
            )
        return PermanentError(
            f"{prefix}: the service refused the request ({detail}): "
            "check the repository's url and options"
        )

    def _missing_bucket(self) -> PermanentError:
        return PermanentError(
            f"{self.url}: bucket {self._bucket_name} does not exist: create it or correct "
            "the repository url"
        )

    def _raise_if_bucket_missing(self) -> None:
        """Tell a missing bucket from a missing object after a 404. Listing one object needs
        only object permissions (bucket metadata would need more); a credential that may
        not list cannot tell, and the object is then taken as the missing one."""
        if self._bucket_known:
            return

        def probe() -> None:
            iterator = self._connection()[0].list_blobs(
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
        parts = _Parts(chunks, self._part_size)
        first = parts.next_part()
        if parts.exhausted:
            return self._write_in_one_request(key, name, first)
        return self._write_resumable(key, name, first, parts)

    def _storage_class(self, key: str) -> str | None:
        kind = object_kind(key)
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

    def _write_in_one_request(self, key: str, name: str, data: bytes) -> ObjectInfo:
        checksum = google_crc32c.Checksum(data)
        expected_crc = _crc32c_text(checksum)

        def upload() -> Any:
            blob = self._new_blob(key, name)
            # sent as object metadata: the service refuses the upload if the bytes differ
            blob.crc32c = expected_crc
            blob.upload_from_string(
                data,
                content_type=CONTENT_TYPE,
                client=self._connection()[0],
                checksum=None,
                timeout=TIMEOUT,
                retry=None,
            )
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

    def _write_resumable(self, key: str, name: str, first: bytes, parts: _Parts) -> ObjectInfo:
        session = self._start_session(key, name)
        checksum = google_crc32c.Checksum()
        try:
            stored, size = self._send_parts(key, session, first, parts, checksum)
        except BaseException:
            self._cancel_session(session)
            raise
        return self._verified(key, name, stored, size, _crc32c_text(checksum))

    def _start_session(self, key: str, name: str) -> str:
        def create() -> str:
            blob = self._new_blob(key, name)
            url: str = blob.create_resumable_upload_session(
                content_type=CONTENT_TYPE,
                client=self._connection()[0],
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
        self,
        key: str,
        session: str,
        part: bytes,
        parts: _Parts,
        checksum: google_crc32c.Checksum,
    ) -> tuple[dict[str, Any], int]:
        """Send full parts one at a time while the next is gathered from the producer
        (the service takes a session's chunks in order only), then the last one. Returns
        the stored object's resource and the number of bytes sent."""
        offset = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcs-upload") as sender:
            in_flight: Future[dict[str, Any] | None] | None = None
            while not parts.exhausted:
                checksum.update(part)
                if in_flight is not None:
                    in_flight.result()
                in_flight = sender.submit(self._send_chunk, key, session, part, offset, None)
                offset += len(part)
                part = parts.next_part()
            if in_flight is not None:
                in_flight.result()
        checksum.update(part)
        size = offset + len(part)
        stored = self._send_chunk(key, session, part, offset, size, _crc32c_text(checksum))
        assert stored is not None  # the last chunk always completes the upload
        return stored, size

    def _send_chunk(
        self,
        key: str,
        session: str,
        data: bytes,
        offset: int,
        total: int | None,
        crc32c: str | None = None,
    ) -> dict[str, Any] | None:
        """Put data at offset of the upload (total given for the last chunk). After a
        transient failure, asks the service how much it kept and sends only the rest.
        Returns the object's resource once the upload is complete."""
        end = offset + len(data)
        persisted = offset
        failures = 0
        while True:
            try:
                if failures:
                    state = self._session_state(session)
                    if isinstance(state, dict):
                        return state
                    persisted = self._check_persisted(key, state, offset, end)
                if total is None and persisted == end:
                    return None
                body = data if persisted == offset else data[persisted - offset :]
                state = self._put_range(session, body, persisted, total, crc32c)
            except _UploadSessionGone:
                raise PermanentError(
                    f"{self.url}: cannot upload {key}: the upload session expired or was "
                    "cancelled: retry the operation"
                ) from None
            except Exception as exc:
                failures += 1
                self._retry_or_raise(exc, failures, f"upload {key}")
                continue
            if isinstance(state, dict):
                return state
            if total is None and state == end:
                return None
            if state <= persisted:
                failures += 1
                self._retry_or_raise(_Truncated(), failures, f"upload {key}")
            # the service may keep only part of a chunk: the rest goes in the next request
            persisted = self._check_persisted(key, state, offset, end)

    def _check_persisted(self, key: str, persisted: int, offset: int, end: int) -> int:
        if not offset <= persisted <= end:
            raise PermanentError(
                f"{self.url}: cannot upload {key}: the service reports {persisted} bytes "
                f"received where {offset} to {end} were expected: retry the operation"
            )
        return persisted

    def _put_range(
        self, session: str, body: bytes, start: int, total: int | None, crc32c: str | None
    ) -> dict[str, Any] | int:
        if total is None:
            content_range = f"bytes {start}-{start + len(body) - 1}/*"
        elif body:
            content_range = f"bytes {start}-{start + len(body) - 1}/{total}"
        else:
            content_range = f"bytes */{total}"
        headers = {"Content-Range": content_range}
        if crc32c is not None:
            # lets the service refuse to create the object if the bytes differ
            headers["X-Goog-Hash"] = f"crc32c={crc32c}"
        response = self._connection()[1].put(session, data=body, headers=headers, timeout=TIMEOUT)
        return self._session_answer(response)

    def _session_state(self, session: str) -> dict[str, Any] | int:
        """How many bytes the service holds for the upload (or the object, if complete)."""
        response = self._connection()[1].put(
            session, data=b"", headers={"Content-Range": "bytes */*"}, timeout=TIMEOUT
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

    def _cancel_session(self, session: str) -> None:
        """Best effort: an abandoned session holds no object and expires within a week."""
        try:
            self._connection()[1].delete(session, timeout=(2.0, 5.0)).close()
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
            f"{self.url}: {key} was stored as {stored_size} bytes with crc32c {stored_crc} "
            f"but {size} bytes with crc32c {expected_crc} were sent; the object was "
            "removed: retry the operation"
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
        stream = _ObjectStream(self, key, offset, stop)
        return cast(BinaryIO, io.BufferedReader(stream, READ_BUFFER_SIZE))

    def _open_download(
        self, key: str, start: int, stop: int | None, generation: str | None
    ) -> tuple[Any, str | None, int | None] | None:
        """Start streaming bytes [start, stop) of the object. Returns the response, the
        generation being read and where its body ends; None when start is at or past
        the end of the object."""
        name = self._name(key)
        url = (
            f"{self._endpoint_url()}/download/storage/v1/b/{quote(self._bucket_name, safe='')}"
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
            response = self._connection()[1].get(
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
                f"{self.url}: cannot read {key}: the service ignored the requested byte "
                "range: check the repository url"
            )
        length = response.headers.get("Content-Length")
        body_stop = start + int(length) if length is not None else stop
        return response, response.headers.get("x-goog-generation") or generation, body_stop

    def _endpoint_url(self) -> str:
        self._connection()  # settles the endpoint (emulator or service)
        return self._endpoint

    # --- stat, list, delete ----------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)

        def fetch() -> Any:
            blob = self._bucket().blob(name)
            blob.reload(client=self._connection()[0], timeout=TIMEOUT, retry=None)
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

    def _list_page(self, prefix: str, token: str | None) -> tuple[list[Any], str | None]:
        def fetch() -> tuple[list[Any], str | None]:
            iterator = self._connection()[0].list_blobs(
                self._bucket_name,
                prefix=self._root + prefix,
                page_token=token,
                fields="items(name,size,updated),nextPageToken",
                timeout=TIMEOUT,
                retry=None,
            )
            page = next(iter(iterator.pages), None)
            next_token: str | None = iterator.next_page_token
            return (list(page) if page is not None else []), next_token

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
    return _one_line(message)


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

