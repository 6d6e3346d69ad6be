"""deploy/prometheus's alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`); each alert has its runbook in docs/alerts.md; and every series the
rules, their tests and the Grafana dashboard name is one Lifeboat exports, read from a
repository written by the project's own code: a renamed metric fails here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the lock
from prometheus_client import generate_latest

from lifeboat.context import Context
from lifeboat.metrics.runs import DaemonMetrics
from tests.unit.metrics_history import metrics_history

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "lifeboat-rules.yml"
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = ROOT / "deploy" / "grafana" / "lifeboat-dashboard.json"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
NAME = re.compile(r"\blifeboat_[a-z0-9_]+")

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not on PATH (Debian's prometheus package; the test setup installs it)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_the_rules_pass_their_unit_tests() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_each_alert_has_its_runbook_and_its_unit_test() -> None:
    headings = re.findall(r"^## (\w+)$", ALERTS_DOC.read_text(), re.MULTILINE)
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    names = [rule["alert"] for rule in alerts()]
    assert len(names) >= 10
    for rule in alerts():
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook_url"].endswith(f"/docs/alerts.md#{anchor}")
        assert rule["labels"]["severity"] in ("critical", "warning")
    assert sorted(headings) == sorted(names), "one section of docs/alerts.md per alert"
    assert set(names) == tested, "each alert seen firing by a promtool unit test"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The series names a daemon serves for a real repository, after one job run and one
    heartbeat (the same families a one-shot command writes into its textfile)."""
    _, config = metrics_history(tmp_path_factory.mktemp("exported"))
    metrics = DaemonMetrics(Context.load(config))
    metrics.heartbeat()
    metrics.record_job("wms-hourly", "backup", "wms", "succeeded", 1.0)
    text = generate_latest(metrics.registry).decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))


def dashboard_expressions(node: Any) -> list[str]:
    """Every query of the dashboard: panel targets and template variables."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        return found + [e for v in node.values() for e in dashboard_expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in dashboard_expressions(v)]
    return []


def test_the_rules_and_their_tests_name_only_exported_series(exported: set[str]) -> None:
    assert "lifeboat_job_runs_total" in exported and "lifeboat_build_info" in exported
    named = {name for rule in alerts() for name in NAME.findall(rule["expr"])}
    in_tests = {name for path in RULE_TESTS for name in NAME.findall(path.read_text())}
    assert named and named <= in_tests
    assert named - exported == set()
    assert in_tests - exported == set()


def test_the_dashboard_names_only_exported_series(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = dashboard_expressions(dashboard)
    named = {name for expression in expressions for name in NAME.findall(expression)}
    assert len(expressions) > 20
    assert named - exported == set()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    sources = {
        json.dumps(panel["datasource"]) for panel in dashboard["panels"] if "datasource" in panel
    }
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"})}
