"""systemd units: a hardened oneshot .service and its .timer per scheduled job, and a
service for `lifeboat daemon`."""

from __future__ import annotations

import pwd
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifeboat.config.model import LifeboatConfig, SqliteSourceConfig, archive_of
from lifeboat.export.command import ScheduledJob, command_line
from lifeboat.export.schedule import NotExportable, jitter_seconds, on_calendar
from lifeboat.policy.retention import parse_duration
from lifeboat.storage.options import url_scheme

DAEMON_UNIT = "lifeboat-daemon.service"
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\-]+")
PROTECT_HOME = ("read-only", "yes", "tmpfs", "no")


@dataclass(frozen=True)
class UnitOptions:
    lifeboat: Path  # the executable ExecStart= runs, absolute
    config_path: Path  # absolute
    user: str
    protect_home: str = "read-only"
    environment_file: Path = Path("/etc/lifeboat/lifeboat.env")


def units(config: LifeboatConfig, jobs: list[ScheduledJob], options: UnitOptions) -> dict[str, str]:
    """File name -> content of every unit: per job a .service and a .timer, and the
    daemon's .service."""
    home = _home_of(options.user)
    writable = writable_paths(config, home)
    files: dict[str, str] = {}
    for scheduled in jobs:
        if not UNIT_NAME.fullmatch(scheduled.name):
            raise NotExportable(
                f"{scheduled.where}: the name cannot be part of a unit name (letters, digits, "
                "and : _ . - only)"
            )
        files[f"lifeboat-{scheduled.name}.service"] = job_service(scheduled, options, writable)
        files[f"lifeboat-{scheduled.name}.timer"] = job_timer(scheduled)
    files[DAEMON_UNIT] = daemon_service(options, writable)
    return files


def _home_of(user: str) -> Path:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        raise NotExportable(
            f"user {user!r} does not exist on this host: export on the host that runs the "
            "jobs (the units name the folders in its home), or choose --user"
        ) from None


def writable_paths(config: LifeboatConfig, home: Path) -> list[Path]:
    """What the jobs write, everything else being read-only under ProtectSystem=strict:
    local repositories, WAL spools, drill work folders, an SQLite source's folder, the
    metrics textfile's folder, a GnuPG home, and the user's Lifeboat state and cache
    (where the default spool, the incremental backups' manifests and the validated-config
    cache live)."""
    paths: list[Path] = [home / ".local" / "state" / "lifeboat", home / ".cache" / "lifeboat"]
    for name, repository in config.repositories.items():
        if url_scheme(repository.url) != "file":
            continue
        url = repository.url
        path = Path(unquote(urlsplit(url).path)) if "://" in url else Path(url).expanduser()
        if not path.is_absolute():
            raise NotExportable(
                f"repositories.{name}.url = {url!r} is a relative path, which a scheduled "
                "job would read from another folder: write it absolute"
            )
        paths.append(path)
    for source in config.sources.values():
        spool_dir = archive_of(source).spool_dir
        if spool_dir is not None:
            paths.append(spool_dir)
        if source.drill.work_dir is not None:
            paths.append(source.drill.work_dir)
        if isinstance(source, SqliteSourceConfig):
            # reading a database in WAL mode writes its -shm file beside it
            paths.append(source.path.parent)
    if config.metrics.textfile is not None:
        paths.append(config.metrics.textfile.parent)
    if config.encryption.method == "gpg":
        paths.append(config.encryption.gpg_homedir or home / ".gnupg")
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


def _exec(argv: list[str]) -> str:
    # systemd splits ExecStart= like a shell with quotes, and expands % specifiers and $
    return " ".join(shlex.quote(arg) for arg in argv).replace("%", "%%").replace("$", "$$")


def _hardening(options: UnitOptions, writable: list[Path], drill: bool) -> list[str]:
    lines = [
        f"User={options.user}",
        # the ${VAR}s the config references (passwords, webhook URLs, cloud credentials);
        # "-": the units also start when every secret comes from files instead
        f"EnvironmentFile=-{options.environment_file}",
        "UMask=0077",
        # /var/lib/lifeboat, created for the user and writable: where a job or the daemon
        # run as root keeps its state
        "StateDirectory=lifeboat",
        "ProtectSystem=strict",
        # "-": a folder not created yet does not keep the unit from starting
        *(f"ReadWritePaths=-{_quoted_path(path)}" for path in writable),
        f"ProtectHome={options.protect_home}",
        "PrivateTmp=true",
        "PrivateDevices=true",
        "PrivateMounts=true",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectKernelLogs=true",
        "ProtectControlGroups=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        "RestrictSUIDSGID=true",
        "RestrictRealtime=true",
        "RestrictNamespaces=true",
        "LockPersonality=true",
        "SystemCallArchitectures=native",
        # a backup and a drill (its scratch PostgreSQL included) run under this set in the
        # tests; a call outside it fails with EPERM rather than killing the job
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
        # AF_NETLINK: glibc's getaddrinfo asks the kernel for the host's addresses with it
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    ]
    if not drill:
        # Python and the libraries Lifeboat loads never map writable code (checked by the
        # tests under the kernel's equivalent); a drill's scratch PostgreSQL JIT-compiles
        # costly queries with LLVM, which does (its queries fail under it)
        lines.append("MemoryDenyWriteExecute=true")
    return lines


def _quoted_path(path: Path) -> str:
    text = str(path).replace("%", "%%")
    return f'"{text}"' if " " in text else text


def job_service(scheduled: ScheduledJob, options: UnitOptions, writable: list[Path]) -> str:
    job = scheduled.job
    argv = command_line(options.lifeboat, options.config_path, scheduled)
    timeout = f"{int(parse_duration(job.timeout).total_seconds())}s" if job.timeout else "infinity"
    lines = [
        _generated(options, scheduled.where),
        "[Unit]",
        f"Description=Lifeboat {job.job} ({scheduled.where})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={_exec(argv)}",
        # a oneshot unit is killed after 90 s by default: a backup takes longer
        f"TimeoutStartSec={timeout}",
        f"SyslogIdentifier=lifeboat-{scheduled.name}",
        *_hardening(options, writable, drill=job.job == "drill"),
        "",
    ]
    return "\n".join(lines)


def job_timer(scheduled: ScheduledJob) -> str:
    job = scheduled.job
    jitter = jitter_seconds(job)
    lines = [
        f"# Generated by `lifeboat export systemd` from {scheduled.where}.",
        "[Unit]",
        f"Description=Lifeboat {job.job} ({scheduled.where}) on its schedule",
        "",
        "[Timer]",
        f"OnCalendar={on_calendar(job, scheduled.where)}",
        # a run missed while the host was down runs once when it is back
        "Persistent=true",
        "AccuracySec=1s",
    ]
    if jitter:
        # the delay is drawn once per timer and kept, as the daemon's jitter is
        lines += [f"RandomizedDelaySec={jitter}s", "FixedRandomDelay=true"]
    lines += ["", "[Install]", "WantedBy=timers.target", ""]
    return "\n".join(lines)


def daemon_service(options: UnitOptions, writable: list[Path]) -> str:
    argv = [str(options.lifeboat), "--config", str(options.config_path), "daemon"]
    lines = [
        _generated(options, "the daemon"),
        "[Unit]",
        "Description=Lifeboat daemon: runs the [schedule] jobs, serves metrics",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={_exec(argv)}",
        "Restart=on-failure",
        "RestartSec=30s",
        # SIGTERM lets a running job finish within the daemon's grace period: a longer
        # grace needs a longer stop timeout
        "TimeoutStopSec=10min",
        "SyslogIdentifier=lifeboat-daemon",
        # the daemon runs drills too
        *_hardening(options, writable, drill=True),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _generated(options: UnitOptions, what: str) -> str:
    return f"# Generated by `lifeboat export systemd` from {options.config_path}, {what}."
