"""Which jobs may run together: two jobs of one source never do, and prune and copy have
each repository they change to themselves. Pure: from the configuration alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lifeboat.config.model import LifeboatConfig, ScheduleConfig


@dataclass(frozen=True)
class Claims:
    """What a running job holds: its sources alone, repositories shared with other readers
    and writers of new backups, and repositories alone (prune deletes, copy fills one from
    another)."""

    sources: frozenset[str] = frozenset()
    shared: frozenset[str] = frozenset()
    alone: frozenset[str] = frozenset()

    def conflicts(self, other: Claims) -> bool:
        touched = self.shared | self.alone
        other_touched = other.shared | other.alone
        return bool(
            self.sources & other.sources or self.alone & other_touched or other.alone & touched
        )


def claims_of(job: ScheduleConfig, config: LifeboatConfig) -> Claims:
    every_repository = frozenset(config.repositories)
    every_source = frozenset(config.sources)

    def written_by(source: str) -> frozenset[str]:
        return frozenset(config.sources[source].repositories or config.repositories)

    if job.job == "prune":
        sources = frozenset([job.source]) if job.source else every_source
        if job.repository:
            repositories = frozenset([job.repository])
        else:
            repositories = frozenset().union(*(written_by(s) for s in sources)) or every_repository
        return Claims(sources=sources, alone=repositories)
    if job.job == "copy":
        assert job.repository and job.to  # the config requires both
        sources = frozenset([job.source]) if job.source else frozenset()
        return Claims(sources=sources, alone=frozenset([job.repository, job.to]))
    if job.job == "report":
        return Claims(shared=every_repository)
    if job.group is not None:  # a backup of a group's sources
        members = config.job_sources(job)
        return Claims(
            sources=frozenset(members), shared=frozenset().union(*map(written_by, members))
        )
    assert job.source is not None  # backup, verify and drill name their source
    if job.job == "backup":
        return Claims(sources=frozenset([job.source]), shared=written_by(job.source))
    # verify and drill read the source's backups wherever they are, copies included
    read = frozenset([job.repository]) if job.repository else every_repository
    return Claims(sources=frozenset([job.source]), shared=read)


def startable(due: Sequence[tuple[str, Claims]], running: Iterable[Claims]) -> list[str]:
    """The due jobs (oldest first) that may start beside the running ones. A job that must
    wait keeps its place: a later job conflicting with it waits too, so a prune is not
    starved by backups that keep overlapping it."""
    held = list(running)
    chosen: list[str] = []
    for name, claims in due:
        if not any(claims.conflicts(other) for other in held):
            chosen.append(name)
        held.append(claims)  # started, or reserved while it waits
    return chosen
