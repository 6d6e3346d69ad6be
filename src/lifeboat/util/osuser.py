"""Running PostgreSQL's server programs as the OS user a cluster belongs to.

PostgreSQL refuses to run as root. When Lifeboat runs as root, initdb, pg_ctl and the server
run as `postgres` and every file they use is given to it; otherwise they run as this
process's own user and nothing changes hands. Restore and the scratch instance both go
through here, so they agree on who owns a data directory."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# who the server runs as when Lifeboat runs as root: the name every packaging uses
SERVER_OS_USER = "postgres"


class NoServerUser(LookupError):
    """Running as root, with no OS user to hand the cluster to."""


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class OsUser:
    """Another OS user than this process's: the one the server programs run as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @property
    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid

    def chown(self, path: Path) -> None:
        os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def chown_tree(self, root: Path) -> None:
        """Give root and everything under it to this user (symbolic links themselves, not
        what they point to: a tablespace link is handed over with its own folder)."""
        os.chown(root, self.uid, self.gid)
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                os.chown(os.path.join(folder, name), self.uid, self.gid, follow_symlinks=False)

    def can_reach(self, path: Path) -> bool:
        """Whether this user can traverse every folder down to path (a mode-bit check:
        a 0700 /root above a scratch folder is the usual way to fail)."""
        for ancestor in [path, *path.parents]:
            try:
                st = ancestor.stat()
            except FileNotFoundError:
                continue
            if st.st_uid == self.uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid in self.groups:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok:
                return False
        return True


def server_user(name: str = SERVER_OS_USER) -> OsUser | None:
    """The user the server programs run as: None when this process is not root (they run
    as ourselves), else the OS user `name`. Raises NoServerUser when root and it is missing."""
    if not is_root():
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise NoServerUser(
            f"running as root but there is no {name!r} OS user to run PostgreSQL as"
        ) from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, home)


def run_as(
    user: OsUser | None,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run command to its end as user (None: as ourselves), its output captured as text.
    The user's HOME, USER and LOGNAME replace ours, as su would set them."""
    environment = dict(os.environ if env is None else env)
    if user is not None:
        environment.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    return subprocess.run(
        list(command),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=environment,
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=list(user.groups) if user else None,
    )
