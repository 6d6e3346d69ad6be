"""The one mapping from a failure to its error line and exit code."""

from __future__ import annotations

import pytest

from lifeboat.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STOP_RECOVERY,
    EXIT_USAGE,
    ConfigError,
    RecoveryStopError,
    StorageError,
    describe_failure,
    report_exception,
)


@pytest.mark.parametrize(
    ("failure", "line", "code"),
    [
        (StorageError("bucket gone"), "bucket gone", EXIT_FAILED),
        (ConfigError("lifeboat.toml: unknown key"), "lifeboat.toml: unknown key", EXIT_USAGE),
        (RecoveryStopError("cannot read"), "cannot read", EXIT_STOP_RECOVERY),
        (KeyboardInterrupt(), "interrupted", EXIT_INTERRUPTED),
        (
            BrokenPipeError(32, "Broken pipe"),
            "a helper process stopped reading its input: [Errno 32] Broken pipe",
            EXIT_FAILED,
        ),
        (
            ValueError("first line\nsecond line"),
            "unexpected ValueError: first line (run with --debug for details)",
            EXIT_FAILED,
        ),
    ],
)
def test_each_failure_has_one_line_and_its_exit_code(
    failure: BaseException, line: str, code: int
) -> None:
    assert describe_failure(failure) == (line, code)


def test_the_reported_line_is_redacted_and_single(capsys: pytest.CaptureFixture[str]) -> None:
    failure = StorageError("cannot reach s3://key:verysecret@bucket/x")
    assert report_exception(failure) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("lifeboat: error: cannot reach")
    assert "verysecret" not in err


def test_debug_prints_the_traceback_first(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        assert report_exception(exc, debug=True) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert err.endswith(
        "lifeboat: error: unexpected ValueError: boom (run with --debug for details)\n"
    )


def test_the_debug_traceback_hides_secrets_of_the_whole_chain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        try:
            # as an SDK words a network failure: the request's URL, SAS token and all
            raise ConnectionError(
                "Max retries exceeded with url: /c/blob?sv=2022-11-02&sig=SECRET (refused)"
            )
        except ConnectionError as cause:
            raise StorageError("repository az://acme/c: cannot read blob: refused") from cause
    except StorageError as exc:
        assert report_exception(exc, debug=True) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Max retries exceeded with url: /c/blob (refused)" in err  # the cause is shown
    assert "SECRET" not in err
    assert err.endswith("lifeboat: error: repository az://acme/c: cannot read blob: refused\n")
