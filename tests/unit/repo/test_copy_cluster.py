"""`lifeboat copy` carries each source's cluster records and refuses a source the target
holds as another cluster (local repositories, real age, real zstd)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import AgeEncryptor, generate_age_identity
from lifeboat.repo import cluster
from lifeboat.repo.catalog import Repository
from lifeboat.repo.cluster import ClusterIdentity
from lifeboat.repo.copy import CopyConflictError, copy_repository, raise_conflicts
from lifeboat.storage.local import LocalStorage
from lifeboat.wal.archive import is_archived, push
from tests.unit.helpers import AgeKey, local_repository
from tests.walfiles import OTHER_SYSTEM_ID, SYSTEM_ID, segment_file

LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))
SEGMENT = "000000010000000A000000FE"


def archive(repo: Repository, source: str, folder: Path, system_identifier: int) -> None:
    """A segment of that cluster in the source's archive, which records the cluster."""
    segment = segment_file(folder, SEGMENT, system_identifier=system_identifier)
    push(repo.storage, source, segment, AgeEncryptor([generate_age_identity()[1]]), level=1)


def record_files(root: Path, source: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / source / "cluster").glob("*.json"))}


def test_records_are_copied_and_a_source_of_another_cluster_is_refused(tmp_path: Path) -> None:
    primary, dr = local_repository(tmp_path, "primary"), local_repository(tmp_path, "dr")
    archive(primary, "crm", tmp_path / "crm", SYSTEM_ID)
    archive(primary, "wms", tmp_path / "wms", SYSTEM_ID)
    # dr holds wms as another cluster (another server archived into it)
    cluster.record_cluster(dr.storage, "wms", ClusterIdentity(str(OTHER_SYSTEM_ID)), "WAL file x")
    before = record_files(tmp_path / "dr", "wms")

    reports = {r.source: r for r in copy_repository(primary, dr, ["crm", "wms"])}

    assert reports["crm"].refused is None and reports["crm"].cluster_records_copied == 1
    assert record_files(tmp_path / "dr", "crm") == record_files(tmp_path / "primary", "crm")
    assert is_archived(dr.storage, "crm", SEGMENT)
    refused = reports["wms"].refused
    assert refused is not None
    assert f"dr holds source wms as the cluster with system identifier {OTHER_SYSTEM_ID}" in (
        refused
    )
    assert f"primary holds the cluster with system identifier {SYSTEM_ID}" in refused
    assert record_files(tmp_path / "dr", "wms") == before  # nothing rewritten
    assert not is_archived(dr.storage, "wms", SEGMENT)  # nothing of it copied
    with pytest.raises(CopyConflictError) as caught:
        raise_conflicts(list(reports.values()))
    assert str(caught.value).startswith("1 source(s) not copied (everything else was): ")
    assert "\n" not in str(caught.value)


def test_a_new_cluster_accepted_in_the_origin_follows_and_nothing_is_rewritten(
    tmp_path: Path,
) -> None:
    primary, dr = local_repository(tmp_path, "primary"), local_repository(tmp_path, "dr")
    archive(primary, "wms", tmp_path / "wms", SYSTEM_ID)
    [first] = copy_repository(primary, dr, ["wms"])
    assert first.refused is None and first.cluster_records_copied == 1

    old = cluster.current(primary.storage, "wms")
    new = ClusterIdentity(str(OTHER_SYSTEM_ID), 17, 1 << 20)
    cluster.record_cluster(primary.storage, "wms", new, "backup --accept-new-cluster", old)
    [second] = copy_repository(primary, dr, ["wms"])
    assert second.refused is None and second.cluster_records_copied == 1
    assert record_files(tmp_path / "dr", "wms") == record_files(tmp_path / "primary", "wms")
    in_force = cluster.current(LocalStorage(tmp_path / "dr"), "wms")
    assert in_force is not None and in_force.system_identifier == str(OTHER_SYSTEM_ID)

    [third] = copy_repository(primary, dr, ["wms"])
    assert third.refused is None and third.cluster_records_copied == 0


def test_the_copy_command_exits_1_with_one_line_and_copies_the_other_sources(
    tmp_path: Path, age_key: AgeKey
) -> None:
    primary, dr = local_repository(tmp_path, "primary"), local_repository(tmp_path, "dr")
    archive(primary, "crm", tmp_path / "crm", SYSTEM_ID)
    archive(primary, "wms", tmp_path / "wms", SYSTEM_ID)
    cluster.record_cluster(dr.storage, "wms", ClusterIdentity(str(OTHER_SYSTEM_ID)), "WAL file x")
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        f'[repositories.primary]\nurl = "{tmp_path / "primary"}"\n'
        f'[repositories.dr]\nurl = "{tmp_path / "dr"}"\n'
        f'[encryption]\nage_recipients = ["{age_key.public}"]\n'
        '[sources.wms]\ndsn = "postgresql://postgres@127.0.0.1/wms"\nrepositories = ["primary"]\n'
        '[sources.crm]\ndsn = "postgresql://postgres@127.0.0.1/crm"\nrepositories = ["primary"]\n'
    )
    result = subprocess.run(
        [LIFEBOAT, "--config", str(config), "copy", "--from", "primary", "--to", "dr"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("lifeboat: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "source wms: dr holds source wms as the cluster with system identifier" in errors[0]
    assert is_archived(dr.storage, "crm", SEGMENT)
    assert not is_archived(dr.storage, "wms", SEGMENT)
