"""The layout of one source's spool. A module of its own, without the spool's logic:
wal-fetch looks here for a prefetched segment, and a miss (each end of recovery has a few)
should not pay for importing the rest."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class SpoolPaths(NamedTuple):
    """Where things live in the spool of one source."""

    root: Path

    @property
    def outgoing(self) -> Path:
        return self.root / "out"

    @property
    def incoming(self) -> Path:
        return self.root / "in"

    @property
    def acknowledged(self) -> Path:
        """Markers of segments the worker read ahead from pg_wal and archived."""
        return self.root / "ok"

    @property
    def reading_ahead(self) -> Path:
        """Names of the segments the worker is archiving from pg_wal right now."""
        return self.root / "busy"

    @property
    def wal_dir_file(self) -> Path:
        """Names the server's pg_wal, where the worker reads ahead."""
        return self.root / "wal_dir"

    @property
    def cluster_file(self) -> Path:
        """The system identifier of the source's cluster, as the repository last said."""
        return self.root / "cluster.json"

    @property
    def refused(self) -> Path:
        """Spooled files the repository refused for good, kept for someone to look at."""
        return self.root / "refused"

    @property
    def worker_lock(self) -> Path:
        return self.root / "worker.lock"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    @property
    def prefetch_lock(self) -> Path:
        return self.root / "in.lock"

    @property
    def prefetch_log(self) -> Path:
        return self.root / "prefetch.log"

    @property
    def prefetch_wanted(self) -> Path:
        return self.root / "in.wanted"
