"""The per-marker line tests/conftest.py adds at the end of a run, on a small suite that
pytest's own harness (pytester) runs in a temporary folder."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ("pytester",)

SUITE = """
import pytest

@pytest.mark.unit
def test_quick():
    pass

@pytest.mark.unit
@pytest.mark.slow
def test_wrong():
    assert False

@pytest.mark.unit
@pytest.mark.xfail(reason="known")
def test_known():
    assert False

@pytest.mark.integration
def test_skipped():
    pytest.skip("no server here")

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

@pytest.mark.integration
def test_no_setup(broken):
    pass

@pytest.fixture
def leaky():
    yield
    raise RuntimeError("teardown fails")

@pytest.mark.integration
def test_leaky_teardown(leaky):
    pass

def test_unmarked():
    pass
"""

CLOSING_LINE = re.compile(r"=+ .* in [\d.]+s.* =+")


@pytest.fixture
def small_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers =\n    unit: u\n    integration: i\n    slow: s\n")
    pytester.makeconftest(
        "from tests.conftest import pytest_collection_finish, pytest_terminal_summary\n"
    )
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_one_line_per_marker_before_pytests_own_closing_line(small_suite: pytest.Pytester) -> None:
    result = small_suite.runpytest("-ra")
    result.assert_outcomes(passed=3, failed=1, skipped=1, xfailed=1, errors=2)
    lines = [line for line in result.outlines if line.strip()]
    summary = (
        "markers: unit 1 passed, 1 failed, 1 xfailed; "
        "integration 1 passed, 2 errors, 1 skipped; slow 1 failed"
    )
    assert summary in lines
    # before the short summary (-ra) and the closing line, which stays the last one
    short_summary = next(i for i, line in enumerate(lines) if "short test summary" in line)
    assert lines.index(summary) < short_summary < len(lines) - 1
    assert CLOSING_LINE.fullmatch(lines[-1]), lines[-1]


def test_no_line_when_nothing_ran(small_suite: pytest.Pytester) -> None:
    result = small_suite.runpytest("-k", "nothing_has_this_name")
    assert not [line for line in result.outlines if line.startswith("markers: ")]
