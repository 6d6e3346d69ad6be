"""Repository: marker, manifests, listing, lookup and cleanup of uncommitted backups."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.errors import (
    BackupNotFoundError,
    IntegrityError,
    NotInitialisedError,
    RepositoryError,
    UsageError,
)
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import (
    MANIFEST_FORMAT,
    Compression,
    Encryption,
    Evidence,
    Manifest,
    Server,
    StoredObject,
    decode,
    encode,
)
from lifeboat.storage.memory import MemoryStorage
from tests.unit.helpers import initialised
from tests.unit.repo.test_commit_builder import WAL_POSITION

T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)
SUFFIX = "5a1e"  # the random part of the ids made here, fixed so that tests can name them


def backup_id(moment: datetime) -> str:
    return layout.backup_id(moment, SUFFIX)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("repo-test")


@pytest.fixture
def repo(storage: MemoryStorage) -> Repository:
    return initialised("main", storage)


def make_manifest(source: str = "wms", when: datetime = T0, **changes: object) -> Manifest:
    """A manifest of the current format, given with format 1's fields (which `changes`
    name): a logical backup unless `type="physical"` (with a physical section, unless given)."""
    backup = backup_id(when)
    fields: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "id": backup,
        "source": source,
        "type": "logical",
        "started_at": when,
        "finished_at": when + timedelta(seconds=42, milliseconds=250),
        "database": source,
        "server": Server(
            version="16.3", version_num=160003, system_identifier="7351234567890123456"
        ),
        "tool": {"lifeboat": "0.1.0", "pg_dump": "pg_dump (PostgreSQL) 16.3"},
        "compression": Compression(level=3),
        "encryption": Encryption(
            method="age",
            recipients=[{"type": "age", "id": "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgp"}],
        ),
        "objects": [
            StoredObject(
                name="db.dump.zst.age",
                size=1_048_931,
                sha256="a" * 64,
                plain_size=7_340_032,
                plain_sha256="b" * 64,
                format="pg_dump-custom",
            ),
            StoredObject(
                name="globals.sql.zst.age",
                size=512,
                sha256="c" * 64,
                plain_size=2048,
                plain_sha256="d" * 64,
                format="pg_dumpall-globals",
            ),
        ],
        "evidence": Evidence(
            row_counts={"public.orders": 1200, "public.items": 5400, "public.empty": 0},
            indexes=["public.orders_pkey", "public.items_pkey", "public.items_order_idx"],
            constraints=["public.items.items_order_fk"],
        ),
        "labels": {"trigger": "nightly", "ticket": "OPS-17"},
    }
    if changes.get("type") == "physical":
        fields["physical"] = WAL_POSITION
    return Manifest.model_validate({**fields, **changes})


def put(storage: MemoryStorage, key: str, data: bytes = b"payload") -> None:
    storage.write(key, [data])


def read(storage: MemoryStorage, key: str) -> bytes:
    with storage.read(key) as stream:
        return stream.read()


# --- marker --------------------------------------------------------------------------------


def test_init_creates_marker(storage: MemoryStorage) -> None:
    repository = Repository("main", storage)
    created, marker = repository.init()
    assert created is True
    assert marker["format_version"] == layout.FORMAT_VERSION
    stored = json.loads(read(storage, layout.MARKER))
    assert stored == marker
    assert stored["format_version"] == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", stored["repository_id"])
    assert stored["created_by"].startswith("lifeboat ")
    datetime.fromisoformat(stored["created_at"])
    assert [i.key for i in storage.list("")] == [layout.MARKER]


def test_init_is_idempotent(storage: MemoryStorage) -> None:
    repository = Repository("main", storage)
    _, first = repository.init()
    created, second = repository.init()
    assert created is False
    assert second == first
    again_created, _ = Repository("other-name", storage).init()
    assert again_created is False
    assert json.loads(read(storage, layout.MARKER))["repository_id"] == first["repository_id"]


def test_ensure_initialised_on_empty_storage(storage: MemoryStorage) -> None:
    repository = Repository("main", storage)
    assert repository.marker() is None
    with pytest.raises(NotInitialisedError) as caught:
        repository.ensure_initialised()
    assert caught.value.exit_code == 1
    assert "not initialised" in str(caught.value)
    assert "main" in str(caught.value)
    assert "mem://repo-test" in str(caught.value)


def test_ensure_initialised_after_init(repo: Repository) -> None:
    repo.ensure_initialised()


def _write_marker(storage: MemoryStorage, marker: object) -> None:
    put(storage, layout.MARKER, json.dumps(marker).encode())


def test_newer_format_version_is_refused(storage: MemoryStorage) -> None:
    _write_marker(storage, {"format_version": layout.FORMAT_VERSION + 1})
    repository = Repository("main", storage)
    with pytest.raises(RepositoryError) as caught:
        repository.ensure_initialised()
    assert not isinstance(caught.value, NotInitialisedError)
    assert "upgrade Lifeboat" in str(caught.value)
    assert caught.value.exit_code == 1
    with pytest.raises(RepositoryError):
        repository.init()


@pytest.mark.parametrize("marker", [{}, {"format_version": "1"}, {"format_version": None}])
def test_marker_without_valid_format_version(storage: MemoryStorage, marker: object) -> None:
    _write_marker(storage, marker)
    with pytest.raises(RepositoryError, match="format_version"):
        Repository("main", storage).ensure_initialised()


def test_marker_that_is_not_json(storage: MemoryStorage) -> None:
    put(storage, layout.MARKER, b"{not json")
    with pytest.raises(RepositoryError, match="not valid JSON"):
        Repository("main", storage).ensure_initialised()


def test_older_format_version_is_accepted(storage: MemoryStorage) -> None:
    _write_marker(storage, {"format_version": 0})
    Repository("main", storage).ensure_initialised()


# --- manifests ----------------------------------------------------------------------------


def test_manifest_round_trip(repo: Repository, storage: MemoryStorage) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    loaded = repo.load_manifest("wms", manifest.id)
    assert loaded == manifest
    assert loaded.plain_size == 7_340_032 + 2048
    assert loaded.stored_size == 1_048_931 + 512
    assert read(storage, layout.manifest_key("wms", manifest.id)) == read(
        storage, layout.manifest_copy_key("wms", manifest.id)
    )


def test_manifest_encoding_is_checksummed_json(storage: MemoryStorage) -> None:
    manifest = make_manifest()
    data = encode(manifest)
    document = json.loads(data)
    assert document["format"] == MANIFEST_FORMAT
    assert document["id"] == "20240501T020000.000000Z-5a1e"
    assert re.fullmatch(r"[0-9a-f]{64}", document["checksum"])
    assert data.endswith(b"\n")
    assert decode(data, "x") == manifest


def test_manifest_summary(repo: Repository) -> None:
    summary = make_manifest().summary()
    assert summary["id"] == "20240501T020000.000000Z-5a1e"
    assert summary["safety"] is False
    assert summary["duration_s"] == 42.25
    assert summary["tables"] == 3
    assert summary["rows"] == 6600
    assert summary["encryption"] == "age"
    assert summary["plain_size"] == 7_342_080
    json.dumps(summary)


def _tamper(storage: MemoryStorage, key: str) -> None:
    """Change one digit of a number in the stored JSON, keeping it valid JSON."""
    data = read(storage, key)
    tampered = data.replace(b'"plain_size": 7340032', b'"plain_size": 7340033', 1)
    assert tampered != data
    json.loads(tampered)
    put(storage, key, tampered)


def test_tampered_manifest_without_good_copy_is_integrity_error(
    repo: Repository, storage: MemoryStorage
) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    _tamper(storage, layout.manifest_key("wms", manifest.id))
    _tamper(storage, layout.manifest_copy_key("wms", manifest.id))
    with pytest.raises(IntegrityError) as caught:
        repo.load_manifest("wms", manifest.id)
    assert "checksum" in str(caught.value)
    assert layout.manifest_key("wms", manifest.id) in str(caught.value)


def test_tampered_manifest_with_missing_copy(repo: Repository, storage: MemoryStorage) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    _tamper(storage, layout.manifest_key("wms", manifest.id))
    storage.delete(layout.manifest_copy_key("wms", manifest.id))
    with pytest.raises(IntegrityError):
        repo.load_manifest("wms", manifest.id)


def test_tampered_manifest_falls_back_to_intact_copy(
    repo: Repository, storage: MemoryStorage
) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    _tamper(storage, layout.manifest_key("wms", manifest.id))
    loaded = repo.load_manifest("wms", manifest.id)
    assert loaded == manifest
    assert loaded.objects[0].plain_size == 7_340_032


def test_truncated_manifest_falls_back_to_copy(repo: Repository, storage: MemoryStorage) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    key = layout.manifest_key("wms", manifest.id)
    put(storage, key, read(storage, key)[:100])
    assert repo.load_manifest("wms", manifest.id) == manifest
    storage.delete(layout.manifest_copy_key("wms", manifest.id))
    with pytest.raises(IntegrityError, match="not valid JSON"):
        repo.load_manifest("wms", manifest.id)


def test_decode_rejects_missing_checksum() -> None:
    body = json.loads(encode(make_manifest()))
    del body["checksum"]
    with pytest.raises(IntegrityError):
        decode(json.dumps(body).encode(), "x")
    for not_an_object in (b'"text"', b"42", b"null", b""):
        with pytest.raises(IntegrityError):
            decode(not_an_object, "x")


def test_manifest_that_is_a_json_array_falls_back_to_copy(
    repo: Repository, storage: MemoryStorage
) -> None:
    manifest = make_manifest()
    repo.save_manifest(manifest)
    put(storage, layout.manifest_key("wms", manifest.id), b"[]")
    assert repo.load_manifest("wms", manifest.id) == manifest


def test_decode_refuses_newer_manifest_format() -> None:
    body = make_manifest(format=MANIFEST_FORMAT + 1).model_dump(mode="json")
    data = encode(Manifest.model_validate(body))
    with pytest.raises(IntegrityError, match="upgrade Lifeboat"):
        decode(data, "x")


def test_missing_manifest_is_backup_not_found(repo: Repository) -> None:
    with pytest.raises(BackupNotFoundError) as caught:
        repo.load_manifest("wms", "20240101T000000Z")
    assert "20240101T000000Z" in str(caught.value)


# --- listing and lookup ------------------------------------------------------------------


def test_list_backups(repo: Repository, storage: MemoryStorage) -> None:
    first = make_manifest("wms", T0)
    second = make_manifest("wms", T0 + timedelta(days=1))
    other = make_manifest("crm", T0 + timedelta(hours=1))
    for manifest in (second, other, first):
        repo.save_manifest(manifest)
    assert [(m.source, m.id) for m in repo.list_backups()] == [
        ("wms", first.id),
        ("crm", other.id),
        ("wms", second.id),
    ]
    assert [m.id for m in repo.list_backups("wms")] == [first.id, second.id]
    assert [m.id for m in repo.list_backups("crm")] == [other.id]
    assert repo.list_backups("nothing") == []
    assert repo.sources() == ["crm", "wms"]


def test_list_backups_ignores_folder_without_manifest(
    repo: Repository, storage: MemoryStorage
) -> None:
    committed = make_manifest("wms", T0)
    repo.save_manifest(committed)
    # an interrupted run: objects, even the copy, but no manifest.json (the commit point)
    put(storage, layout.object_key("wms", "20240502T020000Z", "db.dump.zst.age"))
    put(storage, layout.manifest_copy_key("wms", "20240502T020000Z"), encode(committed))
    # a source with nothing committed at all
    put(storage, layout.object_key("crm", "20240503T020000Z", "db.dump.zst.age"))
    # keys that are not backup folders at all
    put(storage, "wms/backups/not-an-id/manifest.json")
    put(storage, "wms/notes/manifest.json")
    assert [m.id for m in repo.list_backups()] == [committed.id]
    assert repo.committed_ids("wms") == [committed.id]
    assert repo.committed_ids("crm") == []
    assert repo.sources() == ["wms"]


def test_list_backups_empty(repo: Repository) -> None:
    assert repo.list_backups() == []
    assert repo.sources() == []


def test_resolve_latest(repo: Repository) -> None:
    ids = []
    for days in (3, 0, 7, 1):
        manifest = make_manifest("wms", T0 + timedelta(days=days))
        repo.save_manifest(manifest)
        ids.append(manifest.id)
    repo.save_manifest(make_manifest("crm", T0 + timedelta(days=30)))
    latest = repo.resolve("wms", "latest")
    assert latest.id == backup_id(T0 + timedelta(days=7))
    assert latest.source == "wms"
    assert repo.resolve("wms", ids[-1]).id == ids[-1]


def test_listing_and_latest_order_ids_of_both_forms_by_time(repo: Repository) -> None:
    """A repository written by an earlier version (per-second ids) and then by this one,
    the first new backup in the same second as the last old one."""
    old = make_manifest("wms", T0, id="20240501T020000Z")
    older = make_manifest("wms", T0 - timedelta(days=1), id="20240430T020000Z")
    same_second = make_manifest("wms", T0 + timedelta(microseconds=250_000))
    newer = make_manifest("wms", T0 + timedelta(seconds=1))
    for manifest in (newer, old, same_second, older):
        repo.save_manifest(manifest)
    expected = [older.id, old.id, same_second.id, newer.id]
    assert repo.committed_ids("wms") == expected
    assert [m.id for m in repo.list_backups("wms")] == expected
    assert repo.resolve("wms", "latest").id == newer.id
    repo.storage.delete(layout.manifest_key("wms", newer.id))
    assert repo.resolve("wms", "latest").id == same_second.id


def test_ids_in_use_counts_leftovers(repo: Repository, storage: MemoryStorage) -> None:
    committed = make_manifest("wms", T0)
    repo.save_manifest(committed)
    leftover = backup_id(T0 + timedelta(seconds=1))
    put(storage, layout.object_key("wms", leftover, "db.dump.zst.age"))
    put(storage, layout.object_key("crm", "20240503T020000Z", "db.dump.zst.age"))
    assert repo.ids_in_use("wms") == {committed.id, leftover}
    assert repo.committed_ids("wms") == [committed.id]


def test_a_new_backup_id_is_free_in_every_repository(
    repo: Repository, storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.repo.commit import new_backup_id

    dr_storage = MemoryStorage("repo-dr")
    other = Repository("dr", dr_storage)
    other.init()
    # a clash of time and random suffix cannot be caused for real: the first draw is made
    # to be the id of a leftover folder in the other repository
    leftover = backup_id(T0)
    put(dr_storage, layout.object_key("wms", leftover, "db.dump.zst.age"))
    draws = iter([leftover])
    real = layout.backup_id
    monkeypatch.setattr(layout, "backup_id", lambda moment: next(draws, None) or real(moment))
    backup, started = new_backup_id([repo, other], "wms")
    assert backup != leftover
    assert next(draws, None) is None, "the clashing id was drawn"
    assert layout.backup_time(backup) == started


def test_a_manifest_in_another_backup_folder_is_refused(
    repo: Repository, storage: MemoryStorage
) -> None:
    manifest = make_manifest("wms", T0)
    elsewhere = backup_id(T0 + timedelta(days=1))
    put(storage, layout.manifest_key("wms", elsewhere), encode(manifest))
    with pytest.raises(IntegrityError, match=f"describes backup {manifest.id} of wms"):
        repo.load_manifest("wms", elsewhere)
    put(storage, layout.manifest_key("crm", manifest.id), encode(manifest))
    with pytest.raises(IntegrityError, match="not the one of its folder"):
        repo.load_manifest("crm", manifest.id)


def test_resolve_latest_without_backups(repo: Repository) -> None:
    with pytest.raises(BackupNotFoundError, match="no backup of wms"):
        repo.resolve("wms", "latest")


def test_resolve_latest_ignores_uncommitted(repo: Repository, storage: MemoryStorage) -> None:
    repo.save_manifest(make_manifest("wms", T0))
    put(storage, layout.object_key("wms", "20990101T000000Z", "db.dump.zst.age"))
    assert repo.resolve("wms", "latest").id == backup_id(T0)


def test_find_across_sources(repo: Repository) -> None:
    wms = make_manifest("wms", T0)
    crm = make_manifest("crm", T0 + timedelta(minutes=5))
    repo.save_manifest(wms)
    repo.save_manifest(crm)
    assert repo.find(wms.id).source == "wms"
    assert repo.find(crm.id).source == "crm"
    with pytest.raises(BackupNotFoundError, match="not found"):
        repo.find("20000101T000000Z")


def test_find_ambiguous_id(repo: Repository) -> None:
    repo.save_manifest(make_manifest("wms", T0))
    repo.save_manifest(make_manifest("crm", T0))
    with pytest.raises(BackupNotFoundError) as caught:
        repo.find(backup_id(T0))
    assert "several sources" in str(caught.value)
    assert "crm, wms" in str(caught.value)


# --- cleanup -------------------------------------------------------------------------------


def test_remove_uncommitted(repo: Repository, storage: MemoryStorage) -> None:
    committed = make_manifest("wms", T0)
    repo.save_manifest(committed)
    put(storage, layout.object_key("wms", committed.id, "db.dump.zst.age"))
    leftover_a = "20240502T020000Z"
    leftover_b = "20240503T020000Z"
    running = "20240504T020000Z"
    for backup in (leftover_a, leftover_b, running):
        put(storage, layout.object_key("wms", backup, "db.dump.zst.age"))
    put(storage, layout.object_key("wms", leftover_b, "globals.sql.zst.age"))
    put(storage, layout.manifest_copy_key("wms", leftover_b), encode(committed))
    # another source's leftovers and unrelated keys must stay
    put(storage, layout.object_key("crm", leftover_a, "db.dump.zst.age"))
    put(storage, "wms/backups/not-an-id/file")
    before = {i.key for i in storage.list("")}

    removed = repo.remove_uncommitted("wms", keep={running})

    assert removed == [leftover_a, leftover_b]
    after = {i.key for i in storage.list("")}
    gone = before - after
    assert gone == {
        layout.object_key("wms", leftover_a, "db.dump.zst.age"),
        layout.object_key("wms", leftover_b, "db.dump.zst.age"),
        layout.object_key("wms", leftover_b, "globals.sql.zst.age"),
        layout.manifest_copy_key("wms", leftover_b),
    }
    assert layout.object_key("wms", running, "db.dump.zst.age") in after
    assert layout.object_key("crm", leftover_a, "db.dump.zst.age") in after
    assert "wms/backups/not-an-id/file" in after
    assert repo.load_manifest("wms", committed.id) == committed
    assert repo.remove_uncommitted("wms", keep={running}) == []
    assert repo.remove_uncommitted("wms") == [running]


def test_remove_uncommitted_with_nothing_to_do(repo: Repository, storage: MemoryStorage) -> None:
    repo.save_manifest(make_manifest("wms", T0))
    before = dict(storage.objects)
    assert repo.remove_uncommitted("wms") == []
    assert repo.remove_uncommitted("unknown") == []
    assert storage.objects == before


# --- layout ----------------------------------------------------------------------------------


def test_backup_id_format() -> None:
    moment = datetime(2024, 5, 1, 2, 3, 4, 999_999, tzinfo=UTC)
    assert layout.backup_id(moment, "3f9a") == "20240501T020304.999999Z-3f9a"
    plus_two = timezone(timedelta(hours=2))
    assert (
        layout.backup_id(datetime(2024, 1, 1, 1, 30, tzinfo=plus_two), "0000")
        == "20231231T233000.000000Z-0000"
    )
    made = {layout.backup_id(moment) for _ in range(50)}
    assert len(made) > 1, "the suffix is random"
    assert all(re.fullmatch(r"20240501T020304\.999999Z-[0-9a-f]{4}", i) for i in made)
    with pytest.raises(ValueError, match="suffix"):
        layout.backup_id(moment, "3F9A")
    # ids of earlier versions, per second without a suffix, remain valid
    assert layout.is_backup_id("20240501T020304Z")
    assert layout.backup_time("20240501T020304Z") == datetime(2024, 5, 1, 2, 3, 4, tzinfo=UTC)
    for bad in (
        "20240501T020304",
        "2024-05-01T02:03:04Z",
        "20240501t020304Z",
        "20241301T020304Z",  # month 13
        "20240501T020304Z\n",
        "20240501T020304.999999Z",
        "20240501T020304.99999Z-3f9a",
        "20240501T020304.999999Z-3f9",
        "20240501T020304.999999Z-3F9A",
        "20240501T020304.999999Z3f9a",
        "20240501T020304Z-3f9a",
        "",
        "latest",
    ):
        assert not layout.is_backup_id(bad), bad
        with pytest.raises(ValueError, match="not a backup id"):
            layout.backup_order(bad)


def test_backup_id_round_trip_and_order() -> None:
    moments = [T0 + timedelta(seconds=s) for s in (0, 0.5, 1, 59, 3600, 86400 * 40, 86400 * 400)]
    ids = [layout.backup_id(m) for m in moments]
    assert [layout.backup_time(i) for i in ids] == moments
    assert layout.sorted_ids(reversed(ids)) == ids


def test_an_id_without_suffix_sorts_by_time_not_as_a_string() -> None:
    """As strings, "." (0x2E) < "Z" (0x5A): a later id of the same second would sort
    before the id of an earlier version."""
    legacy = "20260303T143000Z"
    same_second = "20260303T143000.500000Z-3f9a"
    assert sorted([legacy, same_second]) == [same_second, legacy]  # why strings will not do
    assert layout.sorted_ids([same_second, legacy]) == [legacy, same_second]
    assert layout.sorted_ids(["20260303T143001Z", same_second, legacy]) == [
        legacy,
        same_second,
        "20260303T143001Z",
    ]


MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
SUFFIXES = st.text("0123456789abcdef", min_size=4, max_size=4)


@st.composite
def mixed_ids(draw: st.DrawFn) -> list[tuple[datetime, str]]:
    """(the moment a backup started, its id): ids of this version, and ids of earlier
    versions (per second, no suffix), some in the same second."""
    made: list[tuple[datetime, str]] = []
    for _ in range(draw(st.integers(0, 30))):
        earlier = [m for m, _ in made]
        if len(earlier) > 0 and draw(st.booleans()):
            base = draw(st.sampled_from(earlier))
            moment = base.replace(microsecond=draw(st.integers(0, 999_999)))
        else:
            moment = draw(MOMENTS)
        if draw(st.booleans()):
            made.append((moment.replace(microsecond=0), f"{moment:%Y%m%dT%H%M%S}Z"))
        else:
            made.append((moment, layout.backup_id(moment, draw(SUFFIXES))))
    return made


@settings(max_examples=300, deadline=None)
@given(mixed_ids())
def test_ids_of_both_forms_parse_and_sort_by_time(made: list[tuple[datetime, str]]) -> None:
    for moment, backup in made:
        assert layout.is_backup_id(backup)
        assert layout.backup_time(backup) == moment
        assert layout.parse_backup_key(f"wms/backups/{backup}/manifest.json") == (
            "wms",
            backup,
            "manifest.json",
        )
    ordered = layout.sorted_ids(backup for _, backup in made)
    moment_of = {backup: moment for moment, backup in made}
    times = [moment_of[backup] for backup in ordered]
    assert times == sorted(times)
    # among ids of this version, string order is time order too (for `ls` and listings)
    current = [backup for _, backup in made if "." in backup]
    assert sorted(current) == layout.sorted_ids(current)


def test_layout_keys() -> None:
    assert layout.backups_prefix("wms") == "wms/backups/"
    assert layout.backup_prefix("wms", "20240501T020000Z") == "wms/backups/20240501T020000Z/"
    assert layout.manifest_key("wms", "X") == "wms/backups/X/manifest.json"
    assert layout.manifest_copy_key("wms", "X") == "wms/backups/X/manifest.copy.json"
    assert layout.lock_key("wms") == "locks/wms.lock"
    assert layout.parse_backup_key("wms/backups/20240501T020000Z/db.dump") == (
        "wms",
        "20240501T020000Z",
        "db.dump",
    )
    for key in ("wms/backups/latest/x", "wms/backups/20240501T020000Z", "a/b/c/d/e", "locks/x"):
        assert layout.parse_backup_key(key) is None


@pytest.mark.parametrize("name", ["wms", "crm-prod", "a.b_c", "X" * 63, "0db"])
def test_valid_source_names(name: str) -> None:
    assert layout.check_source_name(name) == name


@pytest.mark.parametrize("name", ["", "locks", "audit", "-x", ".x", "a/b", "a b", "X" * 64])
def test_invalid_source_names(name: str) -> None:
    with pytest.raises(ValueError):
        layout.check_source_name(name)


def test_latest_of_a_kind_passes_over_newer_backups_of_the_other_kind(repo: Repository) -> None:
    logical = make_manifest("wms", T0)
    physical = make_manifest("wms", T0 + timedelta(hours=1), type="physical")
    for manifest in (logical, physical):
        repo.save_manifest(manifest)
    assert repo.resolve("wms", "latest").id == physical.id
    assert repo.resolve("wms", "latest", kind="logical").id == logical.id
    assert repo.resolve("wms", "latest", kind="physical").id == physical.id


def test_an_id_of_the_other_kind_is_one_clear_line(repo: Repository) -> None:
    physical = make_manifest("wms", T0, type="physical")
    repo.save_manifest(physical)
    with pytest.raises(UsageError) as refused:
        repo.resolve("wms", physical.id, kind="logical")
    assert refused.value.message == (
        f"backup {physical.id} of wms is a physical backup, not a logical one: "
        "restore it with --pgdata DIR"
    )
    with pytest.raises(BackupNotFoundError, match="no logical backup of wms in repository"):
        repo.resolve("wms", "latest", kind="logical")
