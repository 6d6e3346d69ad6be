"""`restore` without --pgdata takes the newest logical backup, whatever physical backups
came after it, and refuses a physical backup named by id in one line."""

from __future__ import annotations

from pathlib import Path

from .archiving import archiving_cluster
from .helpers import error_line
from .versions import on_oldest_major

# choosing a backup by kind does not depend on the server's version:
# run once, on the oldest installed major
pytestmark = on_oldest_major


def test_latest_logical_restore_passes_over_a_newer_physical_backup(pg_bin_dir: Path) -> None:
    with archiving_cluster(pg_bin_dir) as archiving:
        archiving.commit(1, 5)
        archiving.lifeboat("backup", "wms")
        archiving.commit(6, 9)
        physical = archiving.lifeboat("backup", "wms", "--type", "physical").stdout.split()[-1]

        archiving.lifeboat("restore", "wms", "--target-db", "events_copy", "--yes")
        rows = archiving.cluster.psql("SELECT count(*) FROM events", "events_copy")
        assert rows == "5", "the logical backup's rows, not a failure on the physical one"

        refused = archiving.lifeboat(
            "restore", "wms", "--backup", physical, "--target-db", "other", "--yes", check=False
        )
        assert refused.returncode == 2
        assert error_line(refused) == (
            f"lifeboat: error: backup {physical} of wms is a physical backup, not a logical "
            "one: restore it with --pgdata DIR"
        )
