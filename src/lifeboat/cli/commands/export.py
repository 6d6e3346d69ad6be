"""lifeboat export systemd|cron|kubernetes: the [schedule.NAME] jobs for another scheduler."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lifeboat.cli import output as printed
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    func = click.option(
        "--job",
        "only",
        multiple=True,
        metavar="NAME",
        help="Export only this [schedule.NAME] job (repeatable; default: every one).",
    )(func)
    func = click.option("--force", is_flag=True, help="Replace files that exist.")(func)
    return json_option(func)


def _write_into(folder: Path, made: dict[str, str], force: bool, as_json: bool) -> None:
    """Write the files made into folder, and say which."""
    from lifeboat.export.files import write_files

    files = {folder / name: text for name, text in made.items()}
    write_files(files, force)
    _written(list(files), as_json)


def _written(paths: list[Path], as_json: bool) -> None:
    if wants_json(as_json):
        printed.print_json({"written": [str(path) for path in paths]})
    else:
        for path in paths:
            click.echo(str(path))


def _host_options(func: F) -> F:
    func = click.option(
        "--lifeboat",
        "lifeboat_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The lifeboat executable the jobs run (default: this one).",
    )(func)
    return click.option(
        "--environment-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("/etc/lifeboat/lifeboat.env"),
        show_default=True,
        help="KEY=VALUE lines the jobs read first: the ${VAR}s of the config.",
    )(func)


def _lifeboat(given: Path | None) -> Path:
    """The executable as an absolute path: given, else the one running (started by its
    absolute path), else the first on PATH."""
    if given is not None:
        return given.absolute()
    running = Path(sys.argv[0])
    if running.name == "lifeboat" and running.is_file():
        return running.absolute()
    found = shutil.which("lifeboat")
    if found is None:
        raise UsageError("cannot tell where the lifeboat executable is: give --lifeboat PATH")
    return Path(found).absolute()


@click.group()
def command() -> None:
    """Write the [schedule.NAME] jobs as systemd units, a crontab or Kubernetes CronJobs,
    to run them from that scheduler instead of `lifeboat daemon` (docs/operations.md)."""


@command.command("systemd")
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write the units into, e.g. /etc/systemd/system.",
)
@click.option(
    "--user",
    default="postgres",
    show_default=True,
    help="The user the units run as: the one running PostgreSQL's archive_command.",
)
@click.option(
    "--protect-home",
    type=click.Choice(["read-only", "yes", "tmpfs", "no"]),
    default="read-only",
    show_default=True,
    help="ProtectHome= of the units.",
)
@_host_options
@_common
def systemd(
    output: Path,
    user: str,
    protect_home: str,
    lifeboat_path: Path | None,
    environment_file: Path,
    only: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """A hardened lifeboat-JOB.service and lifeboat-JOB.timer per job, and
    lifeboat-daemon.service."""
    from lifeboat.export.command import selected_jobs
    from lifeboat.export.systemd import UnitOptions, units

    ctx = state().context()
    jobs = selected_jobs(ctx.config, only)
    options = UnitOptions(
        lifeboat=_lifeboat(lifeboat_path),
        config_path=ctx.config_path.absolute(),
        user=user,
        protect_home=protect_home,
        environment_file=environment_file,
    )
    _write_into(output, units(ctx.config, jobs, options), force, as_json)


@command.command("cron")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the crontab into this file (default: print it).",
)
@click.option(
    "--lock-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("/run/lock"),
    show_default=True,
    help="Folder of the lock files that keep runs from overlapping.",
)
@_host_options
@_common
def cron(
    output: Path | None,
    lock_dir: Path,
    lifeboat_path: Path | None,
    environment_file: Path,
    only: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """A crontab: one line per job, runs of one source never overlapping."""
    from lifeboat.export.command import selected_jobs
    from lifeboat.export.crontab import CrontabOptions, crontab, host_zone
    from lifeboat.export.files import write_files

    ctx = state().context()
    options = CrontabOptions(
        lifeboat=_lifeboat(lifeboat_path),
        config_path=ctx.config_path.absolute(),
        lock_dir=lock_dir,
        environment_file=environment_file,
    )
    text = crontab(selected_jobs(ctx.config, only), options, host_zone())
    if output is None:
        if wants_json(as_json):
            printed.print_json({"crontab": text})
        else:
            click.echo(text, nl=False)
    else:
        write_files({output: text}, force)
        _written([output], as_json)


@command.command("kubernetes")
@click.option("--image", required=True, help="The container image with lifeboat in it.")
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write the manifests into.",
)
@click.option("--namespace", help="Namespace of the objects (default: the one applied to).")
@click.option(
    "--secret",
    default="lifeboat",
    show_default=True,
    help="Secret holding the config's ${VAR}s and cloud credentials; SECRET-files holds "
    "the key and password files the config names.",
)
@click.option(
    "--run-as-user",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="The (non-root) user id the pods run as.",
)
@_common
def kubernetes(
    image: str,
    output: Path,
    namespace: str | None,
    secret: str,
    run_as_user: int,
    only: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """A CronJob per job and the config as a ConfigMap; secrets stay in Secrets."""
    import tomllib

    from lifeboat.export.command import selected_jobs
    from lifeboat.export.kubernetes import ManifestOptions, manifests
    from lifeboat.export.secrets import check_no_inline_secret

    ctx = state().context()
    raw_text = ctx.config_path.read_text(encoding="utf-8")
    check_no_inline_secret(tomllib.loads(raw_text), ctx.config_path)
    options = ManifestOptions(
        image=image, namespace=namespace, secret=secret, run_as_user=run_as_user
    )
    made = manifests(ctx.config, raw_text, selected_jobs(ctx.config, only), options)
    _write_into(output, made, force, as_json)
