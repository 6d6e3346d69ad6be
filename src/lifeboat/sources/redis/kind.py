"""A Redis source: every database of a server as one RDB snapshot, through the same
pipeline as a PostgreSQL dump (plain sha256 -> zstd -> age/gpg -> stored sha256 into every
repository at once), with the snapshot's own key counts as its evidence."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.config.model import RedisSourceConfig
from lifeboat.context import Context
from lifeboat.errors import (
    AbortedError,
    IntegrityError,
    LifeboatError,
    RestoreError,
    UsageError,
)
from lifeboat.pipeline.checksum import Readable
from lifeboat.pipeline.stream import CHUNK
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.commit import BackupResult, build_manifest, commit, lock_all, new_backup_id
from lifeboat.repo.drills import TableComparison
from lifeboat.repo.fetch import fetched, require_free_space
from lifeboat.repo.manifest import Manifest, RedisDetails
from lifeboat.repo.objects import Targets, read_plain, write_plain
from lifeboat.sources.base import (
    DrillRequest,
    DrillRun,
    PathRestoreRequest,
    PhaseClock,
)
from lifeboat.sources.redis import programs
from lifeboat.sources.redis.rdb import FactsTap, RdbFacts, file_facts
from lifeboat.sources.redis.server import (
    RedisEndpoint,
    SnapshotStream,
    bgsave,
    server_info,
)
from lifeboat.util.fs import fsync_dir

if TYPE_CHECKING:
    from lifeboat.sources.base import PathSource

log = logging.getLogger(__name__)

RDB_OBJECT = "dump.rdb.zst"
RDB_FORMAT = "redis-rdb"


def _config(ctx: Context, source: str) -> RedisSourceConfig:
    config = ctx.source(source)
    if not isinstance(config, RedisSourceConfig):
        raise UsageError(f"source {source!r} is a {config.type} source, not a redis one")
    return config


def evidence_problems(details: RedisDetails, facts: RdbFacts) -> list[str]:
    """How an RDB read back differs from what the backup recorded, one line each."""
    problems = []
    for db in sorted(details.keys.keys() | facts.keys.keys()):
        expected, actual = details.keys.get(db, 0), facts.keys.get(db, 0)
        if expected != actual:
            problems.append(f"{db}: {actual} keys in the RDB, the backup recorded {expected}")
        expected, actual = details.expires.get(db, 0), facts.expires.get(db, 0)
        if expected != actual:
            problems.append(
                f"{db}: {actual} keys with a TTL in the RDB, the backup recorded {expected}"
            )
    return problems


@dataclass(frozen=True)
class RedisRestoreOutcome:
    manifest: Manifest
    repository: str
    path: Path
    replaced: bool
    keys: dict[str, int]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "backup": self.manifest.id,
            "source": self.manifest.source,
            "repository": self.repository,
            "path": str(self.path),
            "replaced": self.replaced,
            "bytes": self.manifest.objects[0].plain_size,
            "keys": self.keys,
            "verified": True,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        keys = ", ".join(f"{db}: {n}" for db, n in sorted(self.keys.items())) or "no keys"
        return [
            f"restored {self.manifest.source}/{self.manifest.id} from {self.repository} "
            f"to {self.path} ({keys}; checked against the backup)",
            "load it: stop Redis, put the file where its `dir` and `dbfilename` say (with "
            "appendonly yes, see docs/redis.md first), start Redis",
        ]


class RedisKind:
    """Every database of a Redis server, as one RDB snapshot."""

    @property
    def kind(self) -> str:
        return RedisDetails.KIND

    # --- backup ----------------------------------------------------------------------------

    def backup(self, ctx: Context, source: str) -> BackupResult:
        config = _config(ctx, source)
        endpoint = RedisEndpoint.from_config(config, f"sources.{source}.url")
        client = endpoint.client()
        # reached and logged in before anything is locked or written: one line if not
        version = str(server_info(client, endpoint, "server").get("redis_version", ""))
        repos = ctx.repositories_for(source)
        encryptor = ctx.encryptor()
        compression = ctx.config.compression
        with lock_all(repos, source, f"backup of {source}") as prepared:
            targets = Targets(prepared.repos, prepared.failed)
            backup, started = new_backup_id(prepared.repos, source)
            snapshot = self._snapshot(ctx, config, endpoint, client)
            tap = FactsTap(snapshot)
            key = layout.object_key(source, backup, RDB_OBJECT + encryptor.suffix)
            try:
                with ctx.reporter.task(f"backup {source} ({endpoint.describe()})") as advance:
                    stored = targets.take(
                        write_plain(
                            targets.live, key, tap, encryptor, compression, RDB_FORMAT, advance
                        )
                    )
                facts = tap.facts()
            except BaseException:
                with contextlib.suppress(Exception):
                    tap.facts()  # the reader thread ends with the stream
                targets.discard([key])
                raise
            finally:
                close = getattr(snapshot, "close", None)
                if close is not None:
                    close()
            manifest = build_manifest(
                source=source,
                backup_id=backup,
                started=started,
                details=RedisDetails(
                    redis_version=facts.redis_version or version,
                    method=config.method,
                    keys=facts.keys,
                    expires=facts.expires,
                ),
                objects=[stored],
                compression_level=compression.level,
                encryptor=encryptor,
                tools={"redis-server": version, "rdb_version": str(facts.rdb_version)},
            )
            result = commit(manifest, targets.outcome(stored), prepared.removed)
        log.info("backup %s/%s committed (%d bytes stored)", source, backup, stored.size)
        return result

    def _snapshot(
        self, ctx: Context, config: RedisSourceConfig, endpoint: RedisEndpoint, client: Any
    ) -> Readable:
        if config.method == "replication":
            return SnapshotStream(endpoint)
        assert config.rdb_path is not None  # the config requires it with bgsave
        bgsave(client, endpoint, config.rdb_path)
        try:
            # the file is opened once the save ended: a later save replaces it by a rename,
            # and this open file stays the snapshot just taken
            return open(config.rdb_path, "rb", buffering=0)
        except OSError as exc:
            raise LifeboatError(f"cannot read rdb_path {config.rdb_path}: {exc.strerror}") from None

    # --- restore ---------------------------------------------------------------------------

    def restore(
        self, ctx: Context, source: str, request: PathRestoreRequest
    ) -> RedisRestoreOutcome:
        began = time.monotonic()
        _config(ctx, source)
        target = request.to.absolute()
        if target.is_dir():
            raise UsageError(f"{target} is a folder: give the RDB file's path (e.g. .../dump.rdb)")
        if not target.parent.is_dir():
            raise UsageError(f"{target.parent} does not exist")
        exists = target.exists() or target.is_symlink()
        if exists and not request.assume_yes:
            raise AbortedError(f"{target} exists: pass --yes to replace it")

        def find(repo: Repository) -> Manifest:
            repo.ensure_initialised()
            return repo.resolve(source, request.backup)

        repo, manifest = first_that_serves(
            ctx.repositories_to_read(source, request.repository), find
        )
        details = manifest.details_as(RedisDetails)
        decryptor = ctx.decryptor_for(manifest)
        obj = manifest.objects[0]
        require_free_space(
            target.parent, obj.plain_size, f"the RDB of {manifest.source}/{manifest.id}"
        )
        try:
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.lifeboat-", dir=target.parent)
        except OSError as exc:
            raise RestoreError(f"cannot write into {target.parent}: {exc.strerror}") from None
        partial = Path(name)
        try:
            with open(fd, "wb", buffering=CHUNK) as sink:
                with ctx.reporter.task(f"restore {source}/{manifest.id}") as advance:
                    read_plain(repo, manifest, obj, decryptor, sink, advance)
                sink.flush()
                os.fsync(sink.fileno())
            facts = file_facts(str(partial))
            problems = evidence_problems(details, facts)
            if problems:
                raise IntegrityError(f"the restored RDB does not match the backup: {problems[0]}")
            _take_place_of(partial, target)
            if exists:
                os.replace(partial, target)
            else:
                try:
                    os.link(partial, target)  # never replaces a file that appeared meanwhile
                except FileExistsError:
                    raise AbortedError(f"{target} exists: pass --yes to replace it") from None
                partial.unlink()
            fsync_dir(target.parent)  # the rename itself survives a crash
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise RestoreError(f"{target.parent} filled up while restoring the RDB") from None
            raise RestoreError(f"cannot write {target}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return RedisRestoreOutcome(
            manifest, repo.name, target, exists, facts.keys, time.monotonic() - began
        )

    # --- what a backup holds, and whether one can work -------------------------------------

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        details = manifest.details_as(RedisDetails)
        return {
            "redis_version": details.redis_version,
            "method": details.method,
            "databases": len(details.keys),
            "keys": sum(details.keys.values()),
            "keys_per_database": details.keys,
            "expires_per_database": details.expires,
        }

    def checks(self, ctx: Context, source: str) -> list[str]:
        try:
            config = _config(ctx, source)
            endpoint = RedisEndpoint.from_config(config, f"sources.{source}.url")
            client = endpoint.client()
            persistence = server_info(client, endpoint, "persistence")
            if config.method == "bgsave" and config.rdb_path is not None:
                if persistence.get("rdb_bgsave_in_progress"):
                    return [f"{endpoint.describe()} is running a BGSAVE right now"]
                if not os.access(config.rdb_path, os.R_OK):
                    return [f"cannot read rdb_path {config.rdb_path}"]
        except LifeboatError as exc:
            return [exc.message]
        return []

    # --- verify --deep and drills ----------------------------------------------------------

    def verify_deep(self, ctx: Context, repo: Repository, manifest: Manifest) -> list[str]:
        details = manifest.details_as(RedisDetails)
        config = ctx.source(manifest.source) if manifest.source in ctx.config.sources else None
        bin_dir = config.redis_bin_dir if isinstance(config, RedisSourceConfig) else None
        checker = programs.find_program("redis-check-rdb", bin_dir)
        decryptor = ctx.decryptor_for(manifest)
        try:
            with fetched(
                repo, manifest, manifest.objects[0], decryptor, Path(tempfile.gettempdir())
            ) as rdb:
                damaged = programs.check_rdb(checker, rdb)
                if damaged:
                    return [damaged]
                return evidence_problems(details, file_facts(str(rdb)))
        except IntegrityError as exc:
            return [exc.message]

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        manifest = request.manifest
        details = manifest.details_as(RedisDetails)
        config = _config(ctx, manifest.source)
        postgres_only = [
            key
            for key, value in (("target_dsn", request.target_dsn), ("checks", request.checks))
            if value
        ]
        if postgres_only:
            raise UsageError(
                f"[sources.{manifest.source}.drill] {' and '.join(postgres_only)}: for "
                "PostgreSQL sources (a Redis drill restores into a scratch redis-server)"
            )
        server = programs.find_program("redis-server", config.redis_bin_dir)
        checker = programs.find_program("redis-check-rdb", config.redis_bin_dir)
        decryptor = ctx.decryptor_for(manifest)
        run = DrillRun(clock, target=f"scratch redis-server ({server})")
        obj = manifest.objects[0]
        # the RDB goes into a private folder (0700) that fetched() removes afterwards, and
        # removes next time if this process is killed; the scratch server dies with it
        work_dir = _drill_folder(request.work_dir)
        with contextlib.ExitStack() as stack:
            with clock.phase("fetch"):
                try:
                    rdb = stack.enter_context(
                        fetched(request.repository, manifest, obj, decryptor, work_dir)
                    )
                except IntegrityError as exc:
                    run.problems.append(exc.message)
                    return _finish(run, request)
            with clock.phase("check"):
                damaged = programs.check_rdb(checker, rdb)
            if damaged:
                run.problems.append(damaged)
                return _finish(run, request)
            with clock.phase("restore"):
                scratch = stack.enter_context(programs.ScratchRedis(server, rdb))
                failed = scratch.wait_loaded()
            if failed:
                run.problems.append(failed)
                return _finish(run, request)
            with clock.phase("verify"):
                keyspace = scratch.keyspace()
                run.target = f"scratch redis-server {scratch.version()}"
            run.tables = [
                TableComparison(db, details.keys.get(db, 0), keyspace.keys.get(db))
                for db in sorted(details.keys.keys() | keyspace.keys.keys())
            ]
            run.problems += [
                f"{t.table}: {t.actual or 0} keys after the restore, the backup has {t.expected}"
                for t in run.tables
                if not t.ok
            ]
            run.problems += [
                f"{db}: {keyspace.expires.get(db, 0)} keys with a TTL after the restore, "
                f"the backup has {n}"
                for db, n in sorted(details.expires.items())
                if keyspace.expires.get(db, 0) != n
            ]
            if not run.problems:
                clock.ready()
        return _finish(run, request)


def _drill_folder(work_dir: Path | None) -> Path:
    """Where a drill fetches the RDB: [sources.NAME.drill] work_dir, else the system's
    temporary folder."""
    folder = Path(work_dir if work_dir is not None else tempfile.gettempdir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the drill folder {folder}: {exc.strerror}") from None
    return folder


def _finish(run: DrillRun, request: DrillRequest) -> DrillRun:
    """The data-loss window: the snapshot holds what the server had when the backup began
    (the server forks for it a moment later, so this errs on the long side)."""
    run.restored_to(request.manifest.started_at, "snapshot time", request.started_at)
    return run


def _take_place_of(partial: Path, target: Path) -> None:
    """The restored file gets the owner and mode of the file it replaces (the Redis user's),
    or, for a new file, the owner of its folder and mode 0640."""
    try:
        old = target.stat()
        mode, uid, gid = old.st_mode & 0o7777, old.st_uid, old.st_gid
    except FileNotFoundError:
        folder = target.parent.stat()
        mode, uid, gid = 0o640, folder.st_uid, folder.st_gid
    if os.geteuid() == 0:
        os.chown(partial, uid, gid)
    os.chmod(partial, mode)


if TYPE_CHECKING:
    _kind: PathSource = RedisKind()
