#!/usr/bin/env python3
"""`lifeboat audit verify` over a generated chain: wall time and peak RSS.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_audit.py                 # 3,000 events, local repository
    .venv/bin/python bench/bench_audit.py --events 10000

Seven years of a daily backup with its verification, quarterly drills, holds and prunes
make a few thousand events. The chain is generated straight into a local repository
(events built and linked as `append` builds them, without its listing per event), anchored
once into a second repository, then `lifeboat audit verify` runs as its own process, timed
from outside; its peak RSS is the child's ru_maxrss. Writes JSON to
``bench/results/audit-<timestamp>.json``. The target (issue 15): under 10 s and 256 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lifeboat.pipeline.crypto import write_identity
from lifeboat.repo import audit
from lifeboat.repo.catalog import Repository
from lifeboat.repo.layout import object_kind
from lifeboat.storage.base import Storage
from lifeboat.storage.registry import open_storage

ROOT = Path(__file__).resolve().parents[1]
LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))
# one day's events, in turn: a backup, its verification; every 90th day a drill, and so on
CYCLE = ("backup", "verify", "backup", "verify", "prune", "hold", "drill", "release")


def generate(storage: Storage, events: int) -> None:
    start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    prev = audit.GENESIS_PREV
    for sequence in range(events):
        kind = "genesis" if sequence == 0 else CYCLE[sequence % len(CYCLE)]
        event = audit.AuditEvent(
            sequence=sequence,
            at=start + dt.timedelta(hours=sequence * 20),
            user="postgres",
            host="db1",
            event=kind,
            source=None if sequence == 0 else "wms",
            backup=None if sequence == 0 else f"20190101T000000.000000Z-{sequence:04x}",
            details={"n": sequence, "reason": "quarterly restore test", "bytes": 7_340_032},
            record=None,
            prev=prev,
        )
        storage.write(audit.event_key(sequence), [audit.canonical(event.to_json())])
        prev = event.hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as folder:
        root = Path(folder)
        public = write_identity(root / "age.key")
        config = root / "lifeboat.toml"
        config.write_text(
            f'[repositories.main]\nurl = "file://{root / "main"}"\n\n'
            f'[repositories.dr]\nurl = "file://{root / "dr"}"\n\n'
            f'[encryption]\nage_recipients = ["{public}"]\n'
            f'age_identity_file = "{root / "age.key"}"\n\n'
            '[sources.wms]\ntype = "postgres"\ndsn = "dbname=wms"\n'
        )
        repos = {
            n: Repository(n, open_storage(str(root / n), classify=object_kind))
            for n in ("main", "dr")
        }
        for repo in repos.values():
            repo.init()
        generate(repos["main"].storage, args.events)
        base = [LIFEBOAT, "--config", str(config), "audit"]
        subprocess.run(
            [*base, "anchor", "--repo", "main", "--to", "dr"], check=True, capture_output=True
        )
        began = time.monotonic()
        verified = subprocess.run(
            [*base, "verify", "--repo", "main", "--json"], capture_output=True, text=True
        )
        wall = time.monotonic() - began
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the larger child
        if verified.returncode != 0:
            sys.exit(f"audit verify failed: {verified.stderr}")
        [report] = json.loads(verified.stdout)
    result: dict[str, Any] = {
        "events": args.events,
        "whole": report["whole"],
        "anchors_checked": len(report["anchors_checked"]),
        "verify_seconds": round(wall, 3),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "targets": {"verify_seconds": 10, "peak_rss_mb": 256},
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"audit-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
