"""The folder where long-running parts keep what they must remember between runs (the
daemon's last runs and its lock; notification incidents), and nothing a backup needs:
losing it costs at most a repeated or a skipped run, never data."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STATE_DIR_ENV = "LIFEBOAT_STATE_DIR"


def state_dir() -> Path:
    """$LIFEBOAT_STATE_DIR, else /var/lib/lifeboat for root, else $XDG_STATE_HOME/lifeboat
    (~/.local/state/lifeboat): where systemd's StateDirectory= and the XDG base directory
    rules put such files. Not created here."""
    chosen = os.environ.get(STATE_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/lifeboat")
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "lifeboat"


def config_key(config_path: Path) -> str:
    """A short name for one configuration file, so that two configurations sharing a state
    folder keep apart what they remember (the file's absolute path, hashed)."""
    absolute = str(config_path.expanduser().resolve())
    return hashlib.sha256(absolute.encode()).hexdigest()[:16]


def ensure_state_dir(folder: Path) -> Path:
    """folder, created (owner only: it names the jobs and their errors) when missing.
    Raises OSError."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder
