"""`lifeboat ARGS` run in the test's own process, as the executable runs it.

Starting the executable costs an interpreter and the imports of the command, a third of a
second or more on a loaded machine, which a test running dozens of commands pays dozens of
times. In this process the command runs through the same entry point (lifeboat.entry: the
lean path for a plain wal-push or wal-fetch, the whole command line for the rest), reads an
empty stdin, and gives back its exit code and what it printed, as a finished process would.

For tests whose subject is what a command does to the repository and the database, its
output and its exit code. A test about the process itself (its signals, its pid on a lock
or a drill's workspace, its start-up time, a kill) starts the executable."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping

from lifeboat import entry
from lifeboat.util import redact
from tests.environment import changed_environment


@contextlib.contextmanager
def _lifeboat_logger_kept() -> Iterator[None]:
    """A command configures the 'lifeboat' logger for its own stderr: as it was afterwards."""
    logger = logging.getLogger("lifeboat")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


@contextlib.contextmanager
def _no_secrets_known() -> Iterator[None]:
    """A process starts knowing no secret to redact (the command registers those of its
    config); those this process knew before come back afterwards."""
    known = set(redact._SECRETS)
    redact._SECRETS.clear()
    try:
        yield
    finally:
        redact._SECRETS.clear()
        redact._SECRETS.update(known)


def _exit_code(code: object, err: io.StringIO) -> int:
    """What the process would exit with for sys.exit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.write(f"{code}\n")  # sys.exit("message") prints it and exits 1
    return 1


def run_lifeboat(
    program: str, args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`program args...` (program: the executable's path, for the record) run in this
    process with env's variables added; its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv, stdin = sys.argv, sys.stdin
    code: object = None
    with changed_environment(env or {}), _lifeboat_logger_kept(), _no_secrets_known():
        sys.argv, sys.stdin = [program, *args], io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                entry.main()
        except SystemExit as exited:
            code = exited.code
        finally:
            sys.argv, sys.stdin = argv, stdin
    return subprocess.CompletedProcess(
        [program, *args], _exit_code(code, err), out.getvalue(), err.getvalue()
    )
