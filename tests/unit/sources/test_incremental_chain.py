"""Incremental backups without a server: which backup a new incremental builds on, where its
parent's backup_manifest comes from, and the chain a restore walks."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from lifeboat.config.model import CompressionConfig
from lifeboat.errors import IntegrityError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor, write_identity
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import (
    SAFETY_LABEL,
    Manifest,
    StoredObject,
)
from lifeboat.repo.objects import write_plain
from lifeboat.sources.postgres.incremental import (
    BACKUP_MANIFEST_OBJECT,
    IncrementalError,
    chain,
    choose_parent,
    keep_local_copy,
    local_copy,
    parent_backup_manifest,
)
from lifeboat.storage.memory import MemoryStorage
from tests.unit.backups import CLUSTER, T0, physical_manifest

BACKUP_MANIFEST = b'{"PostgreSQL-Backup-Manifest-Version": 2, "Files": []}\n'


@pytest.fixture
def repo() -> Repository:
    repository = Repository("main", MemoryStorage("incremental"))
    repository.init()
    return repository


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local copies of backup_manifests go to this test's own state folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def backup(hours: int, parent: Manifest | None = None, **options: Any) -> Manifest:
    """A physical backup holding its backup_manifest, as Lifeboat 17-era backups do."""
    return physical_manifest(hours, parent, objects=[manifest_entry(BACKUP_MANIFEST)], **options)


def manifest_entry(plain: bytes) -> StoredObject:
    return StoredObject(
        name=BACKUP_MANIFEST_OBJECT + ".age",
        size=0,
        sha256="0" * 64,
        plain_size=len(plain),
        plain_sha256=hashlib.sha256(plain).hexdigest(),
        format="pg_backup_manifest",
    )


def committed(repo: Repository, *manifests: Manifest) -> None:
    for manifest in manifests:
        repo.save_manifest(manifest)


# --- the parent of a new incremental -------------------------------------------------------


def test_the_parent_is_the_newest_physical_backup_of_the_same_cluster(repo: Repository) -> None:
    full = backup(1)
    incremental = backup(2, full)
    other_cluster = backup(3, system_identifier="7000000000000000001")
    safety = backup(4, labels={"kind": SAFETY_LABEL})
    committed(repo, full, incremental, other_cluster, safety)
    assert choose_parent(repo, "wms", CLUSTER).id == incremental.id
    # without the server's identifier (not read), any cluster's newest backup
    assert choose_parent(repo, "wms", None).id == other_cluster.id


def test_an_identifier_recorded_signed_names_the_same_cluster(repo: Repository) -> None:
    """Manifests written before identifiers were read unsigned may hold a negative one."""
    unsigned = 2**63 + 5
    full = backup(1, system_identifier=str(unsigned - 2**64))
    committed(repo, full)
    assert choose_parent(repo, "wms", str(unsigned)).id == full.id


def test_without_a_backup_of_this_cluster_a_full_one_is_asked_for(repo: Repository) -> None:
    committed(repo, backup(1, system_identifier="7000000000000000001"))
    with pytest.raises(IncrementalError, match="take a full one first"):
        choose_parent(repo, "wms", CLUSTER)


# --- the parent's backup_manifest ----------------------------------------------------------


def test_an_intact_local_copy_is_used_without_a_key(repo: Repository) -> None:
    full = backup(1)
    keep_local_copy("wms", full.id, BACKUP_MANIFEST)
    assert parent_backup_manifest(repo, full, None) == BACKUP_MANIFEST


def test_a_damaged_local_copy_and_no_key_is_one_clear_error(repo: Repository) -> None:
    full = backup(1)
    keep_local_copy("wms", full.id, BACKUP_MANIFEST.replace(b"2", b"3"))
    with pytest.raises(IncrementalError, match="no private key is configured"):
        parent_backup_manifest(repo, full, None)


def test_without_a_local_copy_the_repository_copy_is_decrypted(
    repo: Repository, tmp_path: Path
) -> None:
    identity = tmp_path / "age.key"
    recipient = write_identity(identity)
    full_id = layout.backup_id(T0, "0001")
    written = write_plain(
        repo,
        layout.object_key("wms", full_id, BACKUP_MANIFEST_OBJECT + ".age"),
        io.BytesIO(BACKUP_MANIFEST),
        AgeEncryptor([recipient]),
        CompressionConfig(level=1, threads=1),
        "pg_backup_manifest",
    )
    full = physical_manifest(1, objects=[written.stored]).model_copy(update={"id": full_id})
    assert not local_copy("wms", full.id).exists()
    assert parent_backup_manifest(repo, full, AgeDecryptor(identity)) == BACKUP_MANIFEST


def test_a_backup_without_its_backup_manifest_cannot_be_a_parent(repo: Repository) -> None:
    older = physical_manifest(1, objects=[])
    with pytest.raises(IncrementalError, match="take a full physical backup to start a new"):
        parent_backup_manifest(repo, older, None)


# --- the chain a restore combines ----------------------------------------------------------


def test_the_chain_runs_from_the_full_backup_to_the_one_restored(repo: Repository) -> None:
    full = backup(1)
    first = backup(2, full)
    second = backup(3, first)
    committed(repo, full, first, second)
    assert [m.id for m in chain(repo, second)] == [full.id, first.id, second.id]
    assert [m.id for m in chain(repo, full)] == [full.id]


def test_a_missing_link_names_the_backup_that_needs_it(repo: Repository) -> None:
    full = backup(1)
    first = backup(2, full)
    second = backup(3, first)
    committed(repo, full, second)
    with pytest.raises(IntegrityError, match=f"{second.id} is incremental on {first.id}, which"):
        chain(repo, second)


def test_a_chain_that_loops_is_refused(repo: Repository) -> None:
    second = backup(2, backup(1))
    # a (damaged or hand-made) manifest of the first backup naming its own descendant as
    # its parent: ids follow the hours, so it stands under the first one's id
    first = backup(1, second)
    committed(repo, first, second)
    # seen at the first backup met twice, not after a thousand loads
    with pytest.raises(IntegrityError, match=f"chain of {second.id} loops at {second.id}"):
        chain(repo, second)
