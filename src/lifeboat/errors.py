"""Every failure a user can meet, each with its exit code and a one-line message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# restore_command exiting above 125 makes PostgreSQL stop recovery rather than end it
EXIT_STOP_RECOVERY = 255


def report_failure(message: str, code: int) -> int:
    """Print the one-line error (secrets redacted); returns the exit code."""
    import sys

    from lifeboat.util.redact import redact

    sys.stderr.write(f"lifeboat: error: {redact(message)}\n")
    return code


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


class LockedError(LifeboatError):
    """Another Lifeboat process holds the repository lock."""


class RestoreError(LifeboatError):
    pass


class AbortedError(LifeboatError):
    """The user declined a confirmation."""


class RecoveryStopError(LifeboatError):
    """wal-fetch failed for another reason than the file being absent from the archive."""

    exit_code = EXIT_STOP_RECOVERY
