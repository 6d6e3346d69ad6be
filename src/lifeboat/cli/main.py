"""The `lifeboat` command: global flags, lazily loaded subcommands, errors -> exit codes."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from lifeboat.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    LifeboatError,
    describe_failure,
    report_exception,
    report_failure,
)

COMMANDS = {
    "init": "lifeboat.cli.commands.init",
    "keygen": "lifeboat.cli.commands.keygen",
    "backup": "lifeboat.cli.commands.backup",
    "list": "lifeboat.cli.commands.list",
    "show": "lifeboat.cli.commands.show",
    "restore": "lifeboat.cli.commands.restore",
    "verify": "lifeboat.cli.commands.verify",
    "drill": "lifeboat.cli.commands.drill",
    "copy": "lifeboat.cli.commands.copy",
    "prune": "lifeboat.cli.commands.prune",
    "hold": "lifeboat.cli.commands.hold",
    "release": "lifeboat.cli.commands.release",
    "demo": "lifeboat.cli.commands.demo",
    "wal-push": "lifeboat.cli.commands.wal_push",
    "wal-fetch": "lifeboat.cli.commands.wal_fetch",
    "wal-stream": "lifeboat.cli.commands.wal_stream",
    "setup-archiving": "lifeboat.cli.commands.setup_archiving",
    "check": "lifeboat.cli.commands.check",
    "status": "lifeboat.cli.commands.status",
    "wal-worker": "lifeboat.cli.commands.wal_worker",
    "drills": "lifeboat.cli.commands.drills",
    "heartbeat": "lifeboat.cli.commands.heartbeat",
    "audit": "lifeboat.cli.commands.audit",
    "runbook": "lifeboat.cli.commands.runbook",
    "report": "lifeboat.cli.commands.report",
    "notify": "lifeboat.cli.commands.notify",
    "export": "lifeboat.cli.commands.export",
    "metrics": "lifeboat.cli.commands.metrics",
    "daemon": "lifeboat.cli.commands.daemon",
    "schedule": "lifeboat.cli.commands.schedule",
}


@dataclass
class CliState:
    config: str | None
    json: bool
    debug: bool
    log_format: str | None
    _context: Any = field(default=None, repr=False)

    def context(self) -> Any:
        """The resolved Context, loaded on first use (keygen and demo need no config)."""
        if self._context is None:
            from lifeboat.cli import logsetup, progress
            from lifeboat.config.load import resolve_config_path
            from lifeboat.context import Context
            from lifeboat.util.progress import Reporter

            ctx = Context.load(resolve_config_path(self.config))
            fmt = self.log_format or ctx.config.logging.format
            logsetup.configure(fmt, ctx.config.logging.level, self.debug)
            ctx.reporter = (
                progress.for_terminal() if fmt == "auto" and not self.json else Reporter()
            )
            self._context = ctx
        return self._context


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs, so `lifeboat X` starts fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command: click.Command = importlib.import_module(module).command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            # click would exit 1 silently on EPIPE; say which pipe broke instead
            raise LifeboatError(describe_failure(exc)[0]) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    metavar="FILE",
    help="Config file (else $LIFEBOAT_CONFIG, else ./lifeboat.toml).",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format", type=click.Choice(["auto", "plain", "json"]), help="Log lines on stderr."
)
@click.version_option(package_name="lifeboat-backup", prog_name="lifeboat")
@click.pass_context
def root(
    ctx: click.Context, config: str | None, as_json: bool, debug: bool, log_format: str | None
) -> None:
    """Encrypted, streaming PostgreSQL backups that prove they restore."""
    from lifeboat.cli import logsetup

    logsetup.configure(log_format or "auto", "info", debug)
    ctx.obj = CliState(config, as_json, debug, log_format)


F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Every command takes --json too, after its name."""
    return click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")(func)


def dsn_option(*names: str, help: str, password_file_option: str) -> Callable[[F], F]:
    """An option taking a libpq DSN. ${NAME} in it is expanded from the environment, so a
    password can stay off the command line, where every user of the host can read it
    (ps, /proc/PID/cmdline) while Lifeboat runs; one written out works, with a warning."""

    def expand(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        import logging

        from lifeboat.config.variables import expand_dsn, written_password

        option = names[0]
        if written_password(value):
            logging.getLogger(__name__).warning(
                "the password in %s is visible to every user of this host in the process "
                "list: use %s, PGPASSWORD, a password file (~/.pgpass or PGPASSFILE) or "
                "'${NAME}' (in single quotes) instead",
                option,
                password_file_option,
            )
        return expand_dsn(value, option)

    return click.option(*names, callback=expand, help=help)


def moment_option_value(value: str | None) -> datetime | None:
    """An option's date or ISO time (UTC when it has no offset); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or an ISO time)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wants_json(as_json: bool) -> bool:
    state = click.get_current_context().find_object(CliState)
    return as_json or bool(state and state.json)


def state() -> CliState:
    found = click.get_current_context().find_object(CliState)
    assert found is not None
    return found


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        root.main(args=args, prog_name="lifeboat", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(report_failure("aborted", EXIT_INTERRUPTED))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(report_exception(exc, debug))
    sys.exit(0)
