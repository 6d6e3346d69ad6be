"""The folder where Lifeboat keeps what must outlive one run on this host: the daemon's
last runs, the notification incidents still open."""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_VARIABLE = "LIFEBOAT_STATE_DIR"
SYSTEM_STATE_DIR = Path("/var/lib/lifeboat")


def state_dir() -> Path:
    """$LIFEBOAT_STATE_DIR, else /var/lib/lifeboat when running as root (a service), else
    ~/.local/state/lifeboat ($XDG_STATE_HOME/lifeboat when that is set). Not created here:
    whoever writes into it makes it (util/fs.make_private_dirs)."""
    chosen = os.environ.get(STATE_DIR_VARIABLE)
    if chosen:
        return Path(chosen)
    if os.geteuid() == 0:
        return SYSTEM_STATE_DIR
    from lifeboat.util.fs import state_home

    return state_home()
