"""The daemon's endpoint over real HTTP on a free loopback port: /metrics parsed as
Prometheus parses it, /healthz following the heartbeat, and a port in use."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from lifeboat.context import Context
from lifeboat.errors import EXIT_FAILED
from lifeboat.metrics.runs import DaemonMetrics
from lifeboat.metrics.server import ListenError, MetricsServer, daemon_server
from tests.unit.helpers import one_error_line, run, write_config
from tests.unit.metrics_history import metrics_history, samples, value

pytestmark = pytest.mark.unit

SCHEDULE = """
[schedule.wms-hourly]
source = "wms"
job = "backup"
cron = "0 * * * *"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    _, config = metrics_history(tmp_path_factory.mktemp("served"), SCHEDULE)
    return Context.load(config)


@pytest.fixture
def served(context: Context) -> Iterator[tuple[DaemonMetrics, str, Clock]]:
    clock = Clock()
    metrics = DaemonMetrics(context, clock=clock)
    server = daemon_server(metrics, "127.0.0.1:0", healthy_within=120)
    server.start()
    try:
        yield metrics, f"http://127.0.0.1:{server.port}", clock
    finally:
        server.stop()


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_carry_the_job_runs_the_heartbeat_and_the_repositories(
    served: tuple[DaemonMetrics, str, Clock],
) -> None:
    metrics, url, clock = served
    status, content_type, text = get(f"{url}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    found = samples(text)
    # each scheduled job's counters exist from the start, at 0
    for result in ("succeeded", "failed", "cancelled"):
        labels = {"job": "wms-hourly", "kind": "backup", "result": result}
        assert value(found, "lifeboat_job_runs_total", **labels) == 0
    assert "lifeboat_daemon_heartbeat_timestamp_seconds" in found
    # the schedule sets how often a backup is expected
    assert value(
        found, "lifeboat_backup_expected_interval_seconds", source="wms", type="logical"
    ) == (3600)
    metrics.heartbeat()
    metrics.record_job("wms-hourly", "backup", "wms", "failed", 12.5)
    clock.now += 60
    metrics.record_job("wms-hourly", "backup", "wms", "succeeded", 10.0)
    found = samples(get(f"{url}/metrics")[2])
    assert (
        value(found, "lifeboat_job_runs_total", job="wms-hourly", kind="backup", result="failed")
        == 1
    )
    assert (
        value(found, "lifeboat_job_runs_total", job="wms-hourly", kind="backup", result="succeeded")
        == 1
    )
    assert value(found, "lifeboat_last_run_success", kind="backup", source="wms", type="") == 1
    assert (
        value(found, "lifeboat_last_run_duration_seconds", kind="backup", source="wms", type="")
        == 10.0
    )
    assert value(
        found, "lifeboat_last_run_timestamp_seconds", kind="backup", source="wms", type=""
    ) == (clock.now)
    assert value(found, "lifeboat_daemon_heartbeat_timestamp_seconds") == clock.now - 60
    assert value(found, "lifeboat_repository_reachable", repository="main") == 1
    assert found["lifeboat_backup_last_success_timestamp_seconds"]


def test_openmetrics_is_served_when_asked(served: tuple[DaemonMetrics, str, Clock]) -> None:
    _, url, _ = served
    status, content_type, text = get(f"{url}/metrics", "application/openmetrics-text")
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")


def test_healthz_follows_the_heartbeat(served: tuple[DaemonMetrics, str, Clock]) -> None:
    metrics, url, clock = served
    assert get(f"{url}/healthz")[::2] == (503, "no heartbeat yet\n")
    metrics.heartbeat()
    clock.now += 120
    assert get(f"{url}/healthz")[::2] == (200, "ok: heartbeat 120 s old\n")
    clock.now += 1
    assert get(f"{url}/healthz")[::2] == (503, "heartbeat 121 s old (more than 120 s)\n")
    assert get(f"{url}/nothing")[0] == 404


def test_an_unknown_outcome_is_refused(context: Context) -> None:
    with pytest.raises(ValueError, match="unknown outcome 'ok'"):
        DaemonMetrics(context).record_job("wms-hourly", "backup", "wms", "ok", 1.0)  # type: ignore[arg-type]


def test_a_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        server = MetricsServer(listen, CollectorRegistry(), lambda: (True, "ok"))
        with pytest.raises(ListenError) as caught:
            server.start()
    assert caught.value.exit_code == EXIT_FAILED
    assert str(caught.value) == (
        f"cannot serve metrics on {listen}: the port is in use (another daemon running? "
        "change [metrics] listen)"
    )


@pytest.mark.parametrize("listen", ["9847", "localhost:http", "::1:9847", "127.0.0.1:70000"])
def test_a_listen_that_is_not_host_port_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listen: str
) -> None:
    config = write_config(tmp_path)
    with config.open("a") as extra:
        extra.write(f'[metrics]\nlisten = "{listen}"\n')
    assert run(["--config", str(config), "metrics"]) == 2
    assert "metrics.listen" in one_error_line(capsys.readouterr().err)


class Broken(Collector):
    """A collector that fails, as a bug in one would."""

    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("boom")

    def describe(self) -> Iterable[Metric]:
        return []


def test_a_failing_collector_is_one_failed_scrape_not_a_dead_endpoint() -> None:
    registry = CollectorRegistry()
    registry.register(Broken())
    server = MetricsServer("127.0.0.1:0", registry, lambda: (True, "ok"))
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        status, _, body = get(f"{url}/metrics")
        assert (status, body) == (500, "metrics could not be collected: RuntimeError: boom\n")
        assert get(f"{url}/healthz")[::2] == (200, "ok\n")
    finally:
        server.stop()
