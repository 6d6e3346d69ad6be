"""`--ping URL` of the one-shot job commands: a dead-man's switch (healthchecks.io-
compatible) pinged at the command's start, success and failure, as the daemon pings a
schedule's `ping_url` (notify/ping.py), so a cron or systemd run that never happens, or
fails, is noticed outside. An interrupt (Ctrl-C) pings nothing after the start."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lifeboat.errors import EXIT_INTERRUPTED, describe_failure

F = TypeVar("F", bound=Callable[..., Any])


def pings(command: F) -> F:
    """Decorate a command's function (below its click decorators): adds --ping URL."""

    @click.option(
        "--ping",
        "ping_url",
        metavar="URL",
        help="A dead-man's-switch URL (healthchecks.io-compatible) pinged at the start "
        "(URL/start), on success (URL) and on failure (URL/fail, with the error line).",
    )
    @functools.wraps(command)
    def run(*args: Any, ping_url: str | None = None, **kwargs: Any) -> Any:
        if ping_url is None:
            return command(*args, **kwargs)
        from lifeboat.notify.ping import ping

        ping(ping_url, "start")
        try:
            result = command(*args, **kwargs)
        except SystemExit as exc:
            ping(ping_url, "success" if exc.code in (None, 0) else "fail")
            raise
        except BaseException as exc:
            line, code = describe_failure(exc)
            if code != EXIT_INTERRUPTED:
                ping(ping_url, "fail", line)
            raise
        ping(ping_url, "success")
        return result

    return run  # type: ignore[return-value]
