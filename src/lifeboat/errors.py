"""Every failure a user can meet, each with its exit code and a one-line message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# restore_command exiting above 125 makes PostgreSQL stop recovery rather than end it
EXIT_STOP_RECOVERY = 255
# an interrupt (Ctrl-C), as a shell reports a process killed by SIGINT
EXIT_INTERRUPTED = 130


def report_failure(message: str, code: int) -> int:
    """Print the one-line error (secrets redacted); returns the exit code."""
    import sys

    from lifeboat.util.redact import redact

    sys.stderr.write(f"lifeboat: error: {redact(message)}\n")
    return code


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code of any failure that ends a run: the click commands
    and the lean wal-push/wal-fetch path both go through here."""
    if isinstance(exc, LifeboatError):
        return exc.message, exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return f"a helper process stopped reading its input: {exc}", EXIT_FAILED
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected {type(exc).__name__}: {detail} (run with --debug for details)", EXIT_FAILED


def report_exception(exc: BaseException, debug: bool = False) -> int:
    """Print exc as its one line on stderr (with the traceback first when debugging, except
    for an interrupt); returns the exit code to end the run with."""
    if debug and not isinstance(exc, KeyboardInterrupt):
        _print_traceback(exc)
    return report_failure(*describe_failure(exc))


def _print_traceback(exc: BaseException) -> None:
    """The traceback of exc and of the failures that caused it, secrets hidden line by
    line: an SDK's message in the chain may quote a signed URL or a token answer, and
    --debug output ends up in bug reports."""
    import sys
    import traceback  # here: loading it costs every wal-push 15 ms

    from lifeboat.util.redact import hide_credentials, redact

    for line in "".join(traceback.format_exception(exc)).splitlines():
        sys.stderr.write(hide_credentials(redact(line)) + "\n")


class LifeboatError(Exception):
    """A failure explained in one line; the CLI prints it without a traceback."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(LifeboatError):
    exit_code = EXIT_USAGE


class UsageError(LifeboatError):
    exit_code = EXIT_USAGE


class RepositoryError(LifeboatError):
    """The repository is missing, not initialised, of an unknown format or inconsistent."""


class NotInitialisedError(RepositoryError):
    pass


class BackupNotFoundError(LifeboatError):
    pass


class IntegrityError(LifeboatError):
    """Stored bytes do not match what the manifest recorded."""


class DecryptionKeyError(LifeboatError):
    """A missing, unreadable or wrong decryption key."""


class EncryptionError(LifeboatError):
    pass


class DatabaseError(LifeboatError):
    """The database could not be reached, refused the login or failed a query."""


class ToolError(LifeboatError):
    """An external tool (pg_dump, pg_restore, gpg) is missing, too old or failed."""


class StorageError(LifeboatError):
    pass


class DiskFullError(StorageError):
    pass


class InsufficientSpaceError(LifeboatError):
    """A local folder lacks the room an operation will need, found before it starts (or a
    file system that filled up while it wrote there)."""


class LockedError(LifeboatError):
    """Another Lifeboat process holds the repository lock."""


class RestoreError(LifeboatError):
    pass


class DrillFailedError(LifeboatError):
    """A drill ran and its verdict is fail (its record says why)."""


class AbortedError(LifeboatError):
    """The user declined a confirmation."""


class RecoveryStopError(LifeboatError):
    """wal-fetch failed for another reason than the file being absent from the archive."""

    exit_code = EXIT_STOP_RECOVERY
