"""A real Prometheus scrapes two real workers (Redis 7, real comments pushed by ``livetopic push``): every query
of the Grafana dashboard returns data through Prometheus' HTTP API, every alert expression evaluates (and
Prometheus' own rule evaluation reports no error), no alert fires while all is well, stopping one worker
makes LivetopicWorkerDown pending and stopping both LivetopicNoReadyWorkers; /metrics passes
``promtool check metrics``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from devtools.deploycheck.promql import (
    alert_expressions,
    dashboard_expressions,
    dashboard_variables,
    grafana_substitute,
    variable_metric,
    variable_queries,
)
from worker.service.metrics import Metrics
from worker.tools.embedded import EmbeddedRedis, free_port

from ..cli.helpers import livetopic, spawn
from ..conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow

DEPLOY = ROOT / "deploy"
NEW_METRICS = (
    "livetopic_queue_wait_seconds_bucket",
    "livetopic_batch_wait_seconds_bucket",
    'livetopic_batch_flushes_total{reason="size"}',
    "livetopic_stream_lag",
    "livetopic_stream_pending",
    'livetopic_stream_length{shard="0",stream="livetopic:comments"}',
)


class Prometheus:
    """``prometheus`` on a free port with a 1 s scrape and rule interval, the deploy alert rules loaded."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
            "scrape_configs": [{"job_name": "livetopic", "static_configs": [{"targets": targets}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = tmp / "prometheus.log"
        self.proc = spawn(
            [
                "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            log=self.log,
        )

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr, time=f"{at:.3f}")
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data["result"]]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["alerts"]
        return alerts

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@pytest.fixture
def prometheus_binary() -> None:
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH (apt-get install prometheus; .ci/run installs it)")


@pytest.fixture
def workers(redis7_server: EmbeddedRedis, tiny_repo: Path, start_worker: Any, prometheus_binary: None) -> list[Any]:
    started = [
        start_worker(
            redis7_server.url,
            tiny_repo,
            "--stream-stats-interval-s",
            "0.5",
            "--max-wait-ms",
            "5",
            "--consumer",
            f"w{i}",
            wait=False,
        )
        for i in range(2)
    ]
    for proc in started:
        proc.wait_ready()
    return started


@pytest.fixture
def prometheus(tmp_path: Path, workers: list[Any]) -> Iterator[Prometheus]:
    root = tmp_path / "prometheus"
    root.mkdir()
    prom = Prometheus(root, [f"127.0.0.1:{w.port}" for w in workers])
    try:
        wait_for(
            "prometheus to scrape both workers",
            lambda: len(prom.query('up{job="livetopic"} == 1', time.time())) == 2,
            log=prom.log,
        )
        yield prom
    finally:
        prom.stop()


def push_comments(tmp_path: Path, url: str) -> int:
    """The bundled sample, real chat lines, over two channels, pushed at 150/s by ``livetopic push``."""
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    path = tmp_path / "comments.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": r["text"], "channel": f"ch{i % 2}"}, ensure_ascii=False) + "\n"
            for i, r in enumerate(rows)
        ),
        encoding="utf-8",
    )
    proc = livetopic("push", str(path), "--redis-url", url, "--rate", "150")
    assert proc.returncode == 0, proc.stderr
    return len(rows)


def check_dashboard(prom: Prometheus, at: float) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "livetopic-dashboard.json").read_text(encoding="utf-8"))
    values = dashboard_variables(dashboard, rate_interval="30s", range_="5m")
    empty = []
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= 30
    for expression in expressions:
        expr = grafana_substitute(expression.expr, values)
        if not prom.query(expr, at):
            empty.append(f"{expression.where}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
    channel_label = "channel" in Metrics().labels._labelnames  # the per-channel heat of issue 13, once merged
    for variable in variable_queries(dashboard):
        selected = variable_metric(variable.expr)
        assert selected is not None, variable
        metric, label = selected
        found = {s.get(label) for s in prom.get("/api/v1/series", **{"match[]": metric}) if s.get(label)}
        if label == "channel" and not channel_label:
            continue  # livetopic_label_total has no channel label in this worker: the variable lists none
        assert found, f"{variable.where}: {variable.expr} lists no values"


def check_alert_rules(prom: Prometheus, at: float) -> None:
    rules = alert_expressions(yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text()))
    for rule in rules:
        prom.query(rule.expr, at)  # raises unless Prometheus evaluates it

    def evaluated() -> bool:
        groups = prom.get("/api/v1/rules")["groups"]
        states = [r for g in groups for r in g["rules"]]
        return len(states) == len(rules) and all(r["health"] == "ok" for r in states)

    wait_for("Prometheus to evaluate every alert rule without error", evaluated, timeout_s=20, log=prom.log)
    assert prom.alerts() == [], "no alert should be pending or firing while all is well"


def alert_state(prom: Prometheus, name: str, **labels: str) -> str | None:
    for alert in prom.alerts():
        if alert["labels"]["alertname"] == name and all(alert["labels"].get(k) == v for k, v in labels.items()):
            return str(alert["state"])
    return None


def test_prometheus_scrapes_workers_dashboard_and_alerts_work(
    tmp_path: Path, redis7_server: EmbeddedRedis, workers: list[Any], prometheus: Prometheus
) -> None:
    body = workers[0].get("/metrics")[1]
    lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert all(name in body for name in NEW_METRICS) and "_created" not in body

    n = push_comments(tmp_path, redis7_server.url)
    client = redis.Redis.from_url(redis7_server.url)
    try:
        wait_for(f"{n} results", lambda: client.xlen("livetopic:topics") == n, timeout_s=120)
    finally:
        client.close()
    wait_for(
        "Prometheus to see every comment finished",
        lambda: prometheus.query(f'sum(livetopic_comments_total{{job="livetopic"}}) == {n}', time.time()),
        log=prometheus.log,
    )
    at = time.time()
    check_dashboard(prometheus, at)
    check_alert_rules(prometheus, at)

    down = workers[0]
    assert down.stop() == 0
    wait_for(
        "LivetopicWorkerDown pending for the stopped worker",
        lambda: alert_state(prometheus, "LivetopicWorkerDown", instance=f"127.0.0.1:{down.port}") == "pending",
    )
    assert alert_state(prometheus, "LivetopicNoReadyWorkers") is None  # the other one is ready
    assert workers[1].stop() == 0
    wait_for(
        "LivetopicNoReadyWorkers pending once no worker is left",
        lambda: alert_state(prometheus, "LivetopicNoReadyWorkers") == "pending",
    )
