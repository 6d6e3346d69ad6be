"""Config files with [schedule.NAME] jobs for the export tests, and the lifeboat executable
of this environment for the exports to name."""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from lifeboat.pipeline.crypto import generate_age_identity

# the real executable: systemd-analyze verify checks that ExecStart= names one
LIFEBOAT = Path(sys.executable).parent / "lifeboat"
USER = pwd.getpwuid(os.getuid()).pw_name

JOBS = """
[schedule.wms-hourly]
source = "wms"
job = "backup"
type = "logical"
cron = "0 * * * *"
timezone = "Europe/Berlin"
jitter = "5m"

[schedule.wms-drill]
source = "wms"
job = "drill"
cron = "0 4 1 */3 *"

[schedule.verify-deep]
source = "wms"
job = "verify"
deep = true
repository = "local"
daily_at = "05:15"

[schedule.prune]
job = "prune"
every = "6h"
timeout = "2h"

[schedule.offsite]
job = "copy"
repository = "local"
to = "offsite"
source = "wms"
cron = "30 2 * * 1-5"
retries = 4
"""


def write_export_config(folder: Path, jobs: str = JOBS, repository: str | None = None) -> Path:
    """folder/lifeboat.toml: the repository local (a folder under folder unless given) and
    offsite (S3), age encryption with an identity file, the source wms whose password is
    a ${VAR}, a Slack channel (no retries), a metrics textfile, and the jobs."""
    _, public = generate_age_identity()
    local = repository or f"file://{folder / 'repo'}"
    config = folder / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "{local}"\n'
        '[repositories.offsite]\nurl = "s3://backups/lifeboat?region=eu-west-1"\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        'age_identity_file = "/etc/lifeboat/age.key"\n'
        "[sources.wms]\n"
        'dsn = "postgresql://backup:${WMS_PASSWORD:-}@db.internal:5432/wms"\n'
        f'archive.spool_dir = "{folder / "spool"}"\n'
        f'[metrics]\ntextfile = "{folder / "textfile" / "lifeboat.prom"}"\n'
        '[notifications.ops]\ntype = "slack"\nurl = "${SLACK_WEBHOOK_URL:-http://unused}"\n'
        # the channel is never there when a test runs a job: no retries' backoff to wait out
        "retries = 0\n"
        '[logging]\nformat = "plain"\n' + jobs,
        encoding="utf-8",
    )
    return config
