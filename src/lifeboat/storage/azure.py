"""Azure Blob Storage backend: az://CONTAINER/PREFIX[?account=NAME].

A write stages blocks of options.part_size in parallel and commits the block list at the
end, so a blob appears complete or not at all: the staged blocks of a failed write are never
visible, and the service discards them at the blob's next commit or after a week.

Credentials come from AZURE_STORAGE_CONNECTION_STRING, else from AZURE_STORAGE_ACCOUNT (or
?account=NAME) with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; AZURE_STORAGE_BLOB_ENDPOINT
replaces https://NAME.blob.core.windows.net (emulators, sovereign clouds). The SDK is imported
only when an az:// repository is opened.
"""

from __future__ import annotations

import builtins  # the class's list() method hides the built-in in its body
import functools
import hashlib
import io
import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

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
    PendingUpload,
    UploadJanitor,
    holding,
)
from lifeboat.storage.options import HONOURED, KeyClassifier, StorageOptions, every_key_is_data
from lifeboat.storage.parts import PartSplitter, Pieces, join_pieces
from lifeboat.storage.resuming import ChunkBody, ResumingReader, Truncated
from lifeboat.storage.retry import Retry, error_line, one_line

if TYPE_CHECKING:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
    from azure.storage.blob import BlobClient, BlobServiceClient, StandardBlobTier

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_ENV = "AZURE_STORAGE_ACCOUNT"
KEY_ENV = "AZURE_STORAGE_KEY"
SAS_TOKEN_ENV = "AZURE_STORAGE_SAS_TOKEN"
BLOB_ENDPOINT_ENV = "AZURE_STORAGE_BLOB_ENDPOINT"
CREDENTIAL_HELP = f"set {CONNECTION_STRING_ENV}, or {ACCOUNT_ENV} with {KEY_ENV} or {SAS_TOKEN_ENV}"

CREDENTIAL_VARIABLES = f"{KEY_ENV}, {SAS_TOKEN_ENV} or {CONNECTION_STRING_ENV}"

ACCESS_TIERS = {tier.lower(): tier for tier in ("Hot", "Cool", "Cold", "Archive")}
# service limits of a block blob
MAX_BLOCKS = 50_000
MAX_BLOCK_SIZE = 4000 * 1024 * 1024
# the service returns the MD5 of a ranged read only for ranges up to 4 MiB
DOWNLOAD_CHUNK_SIZE = 4 * 1024 * 1024
READ_BUFFER_SIZE = 256 * 1024
CONNECTION_TIMEOUT_SECONDS = 20
READ_TIMEOUT_SECONDS = 120

# full-jitter exponential backoff between attempts of a transiently failed request
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Md5Mismatch: the bytes were damaged on the way; sending them again is the cure
TRANSIENT_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError", "Md5Mismatch"})
AUTHENTICATION_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)
# hierarchical-namespace accounts list their folders as empty blobs with this metadata
FOLDER_METADATA = "hdi_isfolder"

T = TypeVar("T")


class _Location(NamedTuple):
    container: str
    prefix: str  # "" or ending with "/"
    account: str | None  # from ?account=NAME


# the service's naming rule, plus the special $root and $web containers
_CONTAINER_NAME = re.compile(r"^((?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*|\$root|\$web)$")


def _parse_url(url: str) -> _Location:
    parts = urlsplit(url)
    if parts.scheme != "az" or not parts.netloc:
        raise ConfigError(f"repository URL {_without_query(url)!r} is not az://CONTAINER/PREFIX")
    container = parts.netloc
    prefix = unquote(parts.path).strip("/")
    shown = f"az://{container}/{prefix}" if prefix else f"az://{container}"
    if not _CONTAINER_NAME.match(container):
        raise ConfigError(
            f"repository {shown}: {container!r} is not a valid container name "
            "(3 to 63 lowercase letters, digits and single hyphens)"
        )
    if prefix:
        _validate_prefix(prefix, shown)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - HONOURED["az"].url_parameters)
    if unknown:
        # name the parameters but never echo their values: a pasted SAS token would show
        raise ConfigError(
            f"repository {shown}: unknown URL parameter(s) {', '.join(unknown)}: only "
            f"?account=NAME is allowed; for credentials {CREDENTIAL_HELP}"
        )
    account = query.get("account") or None
    return _Location(container, f"{prefix}/" if prefix else "", account)


def _validate_prefix(prefix: str, shown: str) -> None:
    try:
        validate_key(prefix)
    except ValueError:
        raise ConfigError(
            f"repository {shown}: the path after the container is not a valid prefix"
        ) from None


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _display_url(location: _Location) -> str:
    """The repository as error messages name it: never any secret, only the account name."""
    url = f"az://{location.container}"
    if location.prefix:
        url = f"{url}/{location.prefix.rstrip('/')}"
    return f"{url}?account={location.account}" if location.account else url


def _checked_tier(options: StorageOptions, shown: str) -> str | None:
    if options.access_tier is None:
        return None
    tier = ACCESS_TIERS.get(options.access_tier.lower())
    if tier is None:
        raise ConfigError(
            f"repository {shown}: access tier {options.access_tier!r} is not one of "
            f"{', '.join(ACCESS_TIERS.values())}"
        )
    return tier


def _check_upload_options(options: StorageOptions, shown: str) -> None:
    if not 0 < options.part_size <= MAX_BLOCK_SIZE:
        raise ConfigError(
            f"repository {shown}: part size {options.part_size} bytes is outside Azure's "
            f"block size limit (1 byte to {MAX_BLOCK_SIZE // (1024 * 1024)} MiB)"
        )
    if options.upload_concurrency < 1 or options.max_attempts < 1:
        raise ConfigError(f"repository {shown}: upload_concurrency and max_attempts must be >= 1")


# --- connecting ----------------------------------------------------------------------------


def _client_settings(options: StorageOptions) -> dict[str, Any]:
    from azure.core.pipeline.transport import RequestsTransport
    from requests import Session
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    # a pooled connection per part in flight, so parallel uploads do not reconnect; urllib3
    # must not retry either (the transport's own session would be set up the same way)
    session = Session()
    adapter = HTTPAdapter(
        pool_maxsize=max(10, options.upload_concurrency + 2),
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return {
        # every request is retried here, with full jitter and options.max_attempts: the
        # SDK's own retries would multiply the attempts and hide throttling
        "retry_total": 0,
        "transport": RequestsTransport(session=session, session_owner=True),
        "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        # objects of one part go up in a single request; larger ones block by block here
        "max_single_put_size": options.part_size,
        "max_block_size": options.part_size,
        "max_single_get_size": DOWNLOAD_CHUNK_SIZE,
        "max_chunk_get_size": DOWNLOAD_CHUNK_SIZE,
    }


def _open_service(location: _Location, options: StorageOptions, shown: str) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    settings = _client_settings(options)
    connection_string = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if connection_string:
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **settings)
        except ValueError:
            raise ConfigError(
                f"repository {shown}: {CONNECTION_STRING_ENV} is malformed: copy it again "
                "from the storage account's access keys"
            ) from None
        if location.account and service.account_name != location.account:
            raise ConfigError(
                f"repository {shown}: the URL names account {location.account!r} but "
                f"{CONNECTION_STRING_ENV} is for {service.account_name!r}: make them agree"
            )
        return service
    account = location.account or os.environ.get(ACCOUNT_ENV, "").strip()
    if not account:
        raise ConfigError(
            f"repository {shown}: no Azure storage account: {CREDENTIAL_HELP}, "
            "or add ?account=NAME to the URL"
        )
    endpoint = os.environ.get(BLOB_ENDPOINT_ENV, "").strip().rstrip("/")
    endpoint = endpoint or f"https://{account}.blob.core.windows.net"
    return BlobServiceClient(endpoint, credential=_credential(account, shown), **settings)


def _credential(account: str, shown: str) -> AzureNamedKeyCredential | AzureSasCredential:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

    key = os.environ.get(KEY_ENV, "").strip()
    if key:
        return AzureNamedKeyCredential(account, key)
    sas_token = os.environ.get(SAS_TOKEN_ENV, "").strip().lstrip("?")
    if sas_token:
        return AzureSasCredential(sas_token)
    raise ConfigError(
        f"repository {shown}: no credentials for account {account!r}: {CREDENTIAL_HELP}"
    )


# --- errors --------------------------------------------------------------------------------


def _error_code(exc: Exception) -> str:
    code = getattr(exc, "error_code", None) or ""
    # the SDK gives a StorageErrorCode member for the codes it knows, a string otherwise
    return str(getattr(code, "value", code))


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_transient(exc: Exception) -> bool:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True  # could not connect, connection reset, timeout
    if isinstance(exc, ClientAuthenticationError) or not isinstance(exc, HttpResponseError):
        return False
    status = _status(exc)
    # no status: the response broke off while its body was read
    return status is None or status in TRANSIENT_STATUSES or _error_code(exc) in TRANSIENT_CODES


def _is_signing_error(exc: Exception) -> bool:
    """The SDK could not even sign the request: the account key is not valid base64."""
    from azure.core.exceptions import ClientAuthenticationError

    return isinstance(exc, ClientAuthenticationError) and _status(exc) is None


def _is_range_beyond_end(exc: Exception) -> bool:
    return _status(exc) == 416


# --- reading -------------------------------------------------------------------------------


class _Download(NamedTuple):
    chunks: Iterator[bytes]
    etag: str | None
    size: int  # bytes this download holds (the range, cut at the blob's end)


# --- writing -------------------------------------------------------------------------------


class AzureBlobStorage(ExclusiveCreate, UploadJanitor):
    """Blobs under PREFIX/ in one container; keys are blob names relative to the prefix."""

    def __init__(
        self, url: str, options: StorageOptions, *, classify: KeyClassifier = every_key_is_data
    ) -> None:
        self._object_kind = classify
        self._location = _parse_url(url)
        self.url = _display_url(self._location)
        self._tier = _checked_tier(options, self.url)
        _check_upload_options(options, self.url)
        self._options = options
        self.retry = Retry(options.max_attempts, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        self.capabilities = Capabilities(
            part_size=options.part_size, max_parallelism=options.upload_concurrency
        )
        self._service = _open_service(self._location, options, self.url)
        self._container = self._service.get_container_client(self._location.container)

    # --- Storage protocol -------------------------------------------------------------

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        blob = self._blob(key)
        parts = PartSplitter(chunks, self._options.part_size)
        first = parts.next_part()
        if not parts.has_more():
            size = self._put_whole(blob, key, join_pieces(first))
        else:
            size = self._put_blocks(blob, key, itertools.chain([first], parts))
        return self._verified(blob, key, size)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        blob = self._blob(key)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"invalid range: offset {offset}, length {length}")
        if length == 0:
            self.stat(key)  # still NotFound for a missing blob
            return io.BytesIO(b"")

        def reopen(position: int, left: int | None, etag: str | None) -> _Download:
            return self._attempt(f"read {key}", lambda: self._download(blob, position, left, etag))

        first = reopen(offset, length, None)
        end = offset + first.size

        def reopen_at(position: int) -> ChunkBody:
            left = end - position
            # pinned to the version first read: a blob replaced meanwhile fails
            return ChunkBody(reopen(position, left, first.etag).chunks)

        def classify(exc: Exception) -> StorageError:
            # whatever breaks a body being read is the read's failure
            return self._classify(exc, f"read {key}") or self._permanent(exc, f"read {key}")

        def after_failure(exc: Exception, failures: int) -> None:
            self.retry.after_failure(exc, failures, classify)

        raw = ResumingReader(
            ChunkBody(first.chunks), offset, end, reopen_at, after_failure, READ_BUFFER_SIZE
        )
        return io.BufferedReader(raw, buffer_size=READ_BUFFER_SIZE)

    def stat(self, key: str) -> ObjectInfo:
        blob = self._blob(key)
        properties = self._attempt(f"look up {key}", blob.get_blob_properties)
        return ObjectInfo(key, properties.size, properties.last_modified)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Blobs whose key starts with prefix, in name order as the service lists them."""
        skip = len(self._location.prefix)
        for item in self._blobs(prefix, uncommitted=False):
            yield ObjectInfo(item.name[skip:], item.size, item.last_modified)

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        from azure.core.exceptions import ResourceNotFoundError

        def delete_if_present() -> None:
            try:
                blob.delete_blob(delete_snapshots="include")
            except ResourceNotFoundError as exc:
                # gone already (maybe by an earlier attempt of this very call): fine
                if _error_code(exc) != "BlobNotFound":
                    raise

        self._attempt(f"delete {key}", delete_if_present)

    # --- optional features ------------------------------------------------------------

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """One Put Blob with If-None-Match: * (overwrite=False): the service answers 409
        BlobAlreadyExists when the blob exists."""
        blob = self._blob(key)
        size = self._put_whole(blob, key, data, if_absent=True)
        return self._verified(blob, key, size)

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """Blobs under prefix that have staged blocks and no committed content: a block
        upload whose writer was killed before its commit. (Blocks staged for a blob that
        exists are discarded by its next commit, and all of them by the service after a
        week.)"""
        skip = len(self._location.prefix)
        committed = {info.key for info in self.list(prefix)}
        for item in self._blobs(prefix, uncommitted=True):
            key = item.name[skip:]
            if key not in committed:
                yield PendingUpload(key, item.last_modified, item.name, item.size)

    def remove_pending_upload(self, upload: PendingUpload) -> None:
        """Delete the uncommitted blob, unless it was committed since it was listed (its
        last-modified time moves on then). Where the service will not delete an
        uncommitted blob, its blocks go on their own within a week."""
        blob = self._blob(upload.key)
        from azure.core.exceptions import HttpResponseError

        def delete_if_unchanged() -> None:
            try:
                blob.delete_blob(if_unmodified_since=upload.started)
            except HttpResponseError as exc:
                # gone, or committed meanwhile by a writer that came back: not ours to touch
                if _error_code(exc) not in ("BlobNotFound", "ConditionNotMet"):
                    raise

        self._attempt(f"remove the uncommitted blocks of {upload.key}", delete_if_unchanged)

    # --- writing ----------------------------------------------------------------------

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(self._location.prefix + validate_key(key))

    def _tier_for(self, key: str) -> StandardBlobTier | None:
        # manifests, locks and markers stay in the account's default tier: they are small
        # and read often, and an archived manifest would make its backup unreadable
        if self._tier is None or self._object_kind(key) == "metadata":
            return None
        from azure.storage.blob import StandardBlobTier

        return StandardBlobTier(self._tier)

    def _put_whole(self, blob: BlobClient, key: str, data: bytes, if_absent: bool = False) -> int:
        """One request for an object that fits in one part; with if_absent, AlreadyExists
        where the blob exists (unless it holds exactly data: an earlier attempt's)."""
        tier = self._tier_for(key)
        from azure.core.exceptions import ResourceExistsError

        def upload() -> dict[str, Any]:
            try:
                return blob.upload_blob(
                    data,
                    length=len(data),
                    overwrite=not if_absent,
                    validate_content=True,
                    standard_blob_tier=tier,
                )
            except ResourceExistsError as exc:
                if if_absent and _error_code(exc) == "BlobAlreadyExists":
                    raise AlreadyExists(f"{self.url}/{key} exists already") from None
                raise

        try:
            response = self._attempt(f"write {key}", upload)
        except AlreadyExists:
            if holding(self, key, data) is None:
                raise
            return len(data)
        self._check_md5(response.get("content_md5"), data, f"write {key}")
        return len(data)

    def _put_blocks(self, blob: BlobClient, key: str, parts: Iterator[Pieces]) -> int:
        """Stage the parts as blocks, at most upload_concurrency at once, then commit them.

        At most upload_concurrency parts are in flight plus the one being filled, so memory
        stays about part_size * (upload_concurrency + 1) whatever the object's size."""
        upload_id = uuid.uuid4().hex  # other writers of this blob stage other block ids
        block_ids: builtins.list[str] = []
        in_flight: set[Future[None]] = set()
        size = 0
        pool = ThreadPoolExecutor(
            max_workers=self._options.upload_concurrency, thread_name_prefix="lifeboat-azure"
        )
        try:
            for part in parts:
                # wait for a free slot before copying the part, so that the copy and the
                # part being filled never coexist with a full set of parts in flight
                self._wait_for_slots(in_flight, self._options.upload_concurrency - 1)
                if len(block_ids) == MAX_BLOCKS:
                    raise PermanentError(
                        self._fail(
                            f"cannot write {key}: it needs more than {MAX_BLOCKS} blocks; "
                            "raise part_size_mb"
                        )
                    )
                data = join_pieces(part)
                block_id = f"{upload_id}-{len(block_ids):06d}"
                block_ids.append(block_id)
                in_flight.add(pool.submit(self._stage_block, blob, key, block_id, data))
                size += len(data)
                del data
            self._wait_for_slots(in_flight, 0)
        except BaseException:
            # nothing was committed: the staged blocks stay invisible and expire
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        self._commit(blob, key, block_ids)
        return size

    @staticmethod
    def _wait_for_slots(in_flight: set[Future[None]], most: int) -> None:
        """Wait until at most `most` uploads are in flight; re-raise a failed one's error."""
        while in_flight:
            finished = {future for future in in_flight if future.done()}
            for future in finished:
                in_flight.discard(future)
                future.result()
            if len(in_flight) <= most:
                return
            wait(in_flight, return_when=FIRST_COMPLETED)

    def _stage_block(self, blob: BlobClient, key: str, block_id: str, data: bytes) -> None:
        what = f"write {key}"

        def stage() -> dict[str, Any]:
            # validate_content: the service checks the block against the MD5 sent with it
            return blob.stage_block(block_id, data, length=len(data), validate_content=True)

        response = self._attempt(what, stage)
        self._check_md5(response.get("content_md5"), data, what)

    def _commit(self, blob: BlobClient, key: str, block_ids: builtins.list[str]) -> None:
        from azure.storage.blob import BlobBlock

        blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
        tier = self._tier_for(key)
        self._attempt(
            f"write {key}", lambda: blob.commit_block_list(blocks, standard_blob_tier=tier)
        )

    def _check_md5(self, reported: object, sent: bytes, what: str) -> None:
        """Compare the MD5 the service reports for what it stored (Azure does for each block
        and single upload, Azurite for single uploads only) with the bytes sent."""
        if reported is None:
            return
        if bytes(reported) != hashlib.md5(sent, usedforsecurity=False).digest():  # type: ignore[call-overload]
            raise PermanentError(
                self._fail(
                    f"cannot {what}: the service stored different bytes than were sent "
                    "(MD5 mismatch); run again and check the network path"
                )
            )

    def _verified(self, blob: BlobClient, key: str, size: int) -> ObjectInfo:
        properties = self._attempt(f"check {key} after writing it", blob.get_blob_properties)
        if properties.size != size:
            # a wrong object must not pass for a backup: remove it
            self.delete(key)
            raise PermanentError(
                self._fail(
                    f"{key} holds {properties.size} bytes after writing {size}; it was "
                    "removed: run again"
                )
            )
        return ObjectInfo(key, size, properties.last_modified)

    # --- reading and listing ------------------------------------------------------------

    def _download(
        self, blob: BlobClient, offset: int, length: int | None, etag: str | None
    ) -> _Download:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        conditions: dict[str, Any] = {}
        if etag is not None:
            conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            # no offset for a whole blob: the SDK then reads an empty blob too (a range from
            # 0 would be refused), but it wants one with a length
            start = offset if offset or length is not None else None
            downloader = blob.download_blob(
                offset=start, length=length, validate_content=True, **conditions
            )
        except HttpResponseError as exc:
            if _is_range_beyond_end(exc):
                return _Download(iter(()), etag, 0)  # the blob ends before offset: no bytes
            raise
        return _Download(downloader.chunks(), downloader.properties.etag, downloader.size)

    def _blobs(self, prefix: str, uncommitted: bool) -> Iterator[Any]:
        """The blobs under prefix, page by page (with those of uncommitted blocks only when
        asked), without the folder placeholders of hierarchical-namespace accounts."""
        name_prefix = self._location.prefix + prefix
        token: str | None = None
        while True:
            fetch_page = functools.partial(self._blob_page, name_prefix, token, uncommitted)
            page, token = self._attempt(f"list {prefix or 'the repository'}", fetch_page)
            yield from page
            if not token:
                return

    def _blob_page(
        self, name_prefix: str, token: str | None, uncommitted: bool
    ) -> tuple[builtins.list[Any], str | None]:
        include = ["metadata", "uncommittedblobs"] if uncommitted else ["metadata"]
        pages = self._container.list_blobs(
            name_starts_with=name_prefix, include=include, results_per_page=5000
        ).by_page(continuation_token=token)
        page = next(pages, None)
        if page is None:
            return [], None
        blobs = [item for item in page if not (item.metadata or {}).get(FOLDER_METADATA)]
        return blobs, pages.continuation_token  # type: ignore[attr-defined]

    # --- retries and errors -----------------------------------------------------------

    def _attempt(self, what: str, operation: Callable[[], T]) -> T:
        """Run one request, retrying transient failures up to options.max_attempts in total;
        a service error becomes NotFound, PermanentError or (when retries ran out)
        TransientError."""
        return self.retry.call(operation, lambda exc: self._classify(exc, what))

    def _classify(self, exc: Exception, what: str) -> StorageError | None:
        """What a failed request means; None for an exception that is not the service's
        (a bug), which propagates as it is."""
        from azure.core.exceptions import AzureError

        if isinstance(exc, Truncated):
            return TransientError(self._fail(f"cannot {what}: {exc}"))
        if not isinstance(exc, AzureError):
            return None
        if _is_transient(exc):
            return TransientError(
                self._fail(
                    f"cannot {what}: {self._describe(exc)}; check the network and the service "
                    "status, then run again"
                )
            )
        return self._permanent(exc, what)

    def _permanent(self, exc: Exception, what: str) -> StorageError:
        if _error_code(exc) == "BlobNotFound":
            return NotFound(self._fail(f"cannot {what}: it does not exist"))
        detail = self._advice(exc) or self._describe(exc)
        return PermanentError(self._fail(f"cannot {what}: {detail}"))

    def _fail(self, text: str) -> str:
        return error_line(self.url, text)

    def _advice(self, exc: Exception) -> str | None:
        """What a permanent failure means and what to do about it, for the known ones."""
        code, status = _error_code(exc), _status(exc)
        container = self._location.container
        if code == "ContainerNotFound":
            account = self._service.account_name
            return (
                f"container {container!r} does not exist in account {account!r}: create it "
                "or correct the URL"
            )
        if code in AUTHENTICATION_CODES or status == 401 or _is_signing_error(exc):
            return (
                f"Azure refused the credentials ({code or status or 'unusable key'}): check "
                f"{CREDENTIAL_VARIABLES} (a SAS token may have expired)"
            )
        if code == "AuthorizationFailure":
            # Azure: a network rule or account setting refused the request; Azurite: a bad key
            return (
                f"Azure refused the request ({code}): check {CREDENTIAL_VARIABLES} and that "
                "the storage account's network rules admit this machine"
            )
        if status == 403:
            return (
                f"access denied ({code or status}): allow these credentials to read, write, "
                f"list and delete blobs in container {container!r}"
            )
        if "Immutable" in code:
            return (
                f"the blob is locked by an immutability policy or legal hold ({code}); it can "
                "be deleted once its retention ends"
            )
        if code in ("BlobArchived", "BlobBeingRehydrated"):
            return (
                f"the blob is in the Archive tier ({code}): rehydrate it to Hot or Cool (it "
                "takes hours), then run again"
            )
        if code == "ConditionNotMet":
            return "the blob was replaced while being read; run again"
        if code == "InvalidBlockList":
            return (
                "another writer committed this blob meanwhile, discarding these blocks; run again"
            )
        return None

    @staticmethod
    def _describe(exc: Exception) -> str:
        status = _status(exc)
        code = _error_code(exc)
        label = " ".join(str(part) for part in (status, code) if part)
        detail = one_line(getattr(exc, "message", None) or exc) or type(exc).__name__
        return f"{label}: {detail}" if label else detail
