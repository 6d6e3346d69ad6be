"""Which jobs may run together, from the configuration alone."""

from __future__ import annotations

from lifeboat.daemon.overlap import Claims, claims_of, startable

from .fakes import config_with

CONFIG = config_with(
    {
        "wms-backup": {"job": "backup", "source": "wms", "every": "1h"},
        "wms-drill": {"job": "drill", "source": "wms", "every": "1h"},
        "crm-backup": {"job": "backup", "source": "crm", "every": "1h"},
        "prune-r0": {"job": "prune", "repository": "r0", "every": "1h"},
        "prune-all": {"job": "prune", "every": "1h"},
        "copy": {"job": "copy", "repository": "r0", "to": "r1", "every": "1h"},
        "report": {"job": "report", "every": "1h"},
    },
    repositories=2,
)
CLAIMS = {name: claims_of(job, CONFIG) for name, job in CONFIG.schedule.items()}


def conflict(a: str, b: str) -> bool:
    assert CLAIMS[a].conflicts(CLAIMS[b]) == CLAIMS[b].conflicts(CLAIMS[a])
    return CLAIMS[a].conflicts(CLAIMS[b])


def test_jobs_of_one_source_conflict_and_of_two_sources_do_not() -> None:
    assert conflict("wms-backup", "wms-drill")
    assert not conflict("wms-backup", "crm-backup")
    assert not conflict("report", "wms-backup")


def test_prune_and_copy_have_their_repositories_alone() -> None:
    for alone in ("prune-r0", "copy"):
        for other in ("wms-backup", "crm-backup", "wms-drill", "report"):
            assert conflict(alone, other), (alone, other)
    assert conflict("prune-r0", "copy")
    # a prune of every source holds every source, in every repository
    assert CLAIMS["prune-all"].sources == {"wms", "crm"}
    assert CLAIMS["prune-all"].alone == {"r0", "r1"}


def test_a_waiting_job_keeps_its_place() -> None:
    due = [(name, CLAIMS[name]) for name in ("prune-r0", "crm-backup", "wms-backup")]
    # a drill of wms runs: the prune waits for it, and so do the backups behind the prune
    assert startable(due, [CLAIMS["wms-drill"]]) == []
    # nothing runs: the prune starts, the backups wait for it
    assert startable(due, []) == ["prune-r0"]
    # unrelated jobs start together
    assert startable([("wms", CLAIMS["wms-backup"]), ("crm", CLAIMS["crm-backup"])], []) == [
        "wms",
        "crm",
    ]


def test_claims_without_anything_in_common_never_conflict() -> None:
    assert not Claims(sources=frozenset({"a"}), shared=frozenset({"r"})).conflicts(
        Claims(sources=frozenset({"b"}), shared=frozenset({"r"}))
    )
