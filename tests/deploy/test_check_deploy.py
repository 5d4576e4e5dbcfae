"""``make check-deploy`` (python -m devtools.deploycheck): passes on deploy/ as it is, and fails, naming the
cause, on a copy of deploy/ with one thing broken: a metric renamed in the dashboard or an alert, a replica
count or README number that disagrees, a field KEDA does not know, an alert without a silent test, a query
that does not parse."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.deploycheck.command import run_steps
from devtools.deploycheck.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = "grafana/livetopic-dashboard.json"


def need(*tools: str) -> None:
    for tool in tools:
        if tool == "kubernetes_validate":
            if importlib.util.find_spec("kubernetes_validate") is None:
                pytest.skip("kubernetes-validate is not installed (the [deploy] extra; make check-deploy installs it)")
        elif shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH (.ci/run installs it)")


def broken_copy(tmp_path: Path, path: str, edit: Callable[[str], str]) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    target = copy / path
    before = target.read_text(encoding="utf-8")
    after = edit(before)
    assert after != before, "the edit changed nothing"
    target.write_text(after, encoding="utf-8")
    return copy


def swap(old: str, new: str) -> Callable[[str], str]:
    """The edit that replaces ``old`` with ``new``."""
    return lambda text: text.replace(old, new)


def check(deploy_dir: Path, *steps: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.deploycheck", "--deploy-dir", str(deploy_dir), "--only", *steps],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    return proc.returncode, proc.stdout + proc.stderr


def fails(tmp_path: Path, path: str, edit: Callable[[str], str], step: str) -> str:
    """``step`` fails on a copy of deploy/ with ``path`` edited; its output."""
    code, out = check(broken_copy(tmp_path, path, edit), step)
    assert code == 1, out
    return out


@pytest.mark.slow
def test_deploy_passes_every_check() -> None:
    need("kubectl", "promtool", "kubernetes_validate")
    lines: list[str] = []
    problems = run_steps(DEPLOY, say=lines.append)
    assert problems == 0, "\n".join(lines)
    assert [line for line in lines if line.startswith("[")] == [
        "[ok] yaml",
        "[ok] kubernetes",
        "[ok] overlays",
        "[ok] agreement",
        "[ok] prometheus",
        "[ok] metrics",
        "[ok] compose",
    ]


def test_a_metric_renamed_in_the_dashboard_fails(tmp_path: Path) -> None:
    need("promtool")
    assert check(DEPLOY, "metrics")[0] == 0
    out = fails(
        tmp_path, DASHBOARD, swap("livetopic_queue_wait_seconds_bucket", "livetopic_queue_wait_bucket"), "metrics"
    )
    assert 'panel "Queue wait (stream entry → read by a worker)" query A: metric livetopic_queue_wait_bucket' in out


def test_a_metric_renamed_in_an_alert_or_a_variable_fails(tmp_path: Path) -> None:
    need("promtool")
    copy = broken_copy(
        tmp_path, "prometheus/alerts.yml", swap("max(livetopic_stream_lag) > 10000", "max(livetopic_lag) > 10000")
    )
    dashboard = copy / DASHBOARD
    data = json.loads(dashboard.read_text())
    data["templating"]["list"][1]["query"]["query"] = "label_values(livetopic_readiness, instance)"
    dashboard.write_text(json.dumps(data))
    code, out = check(copy, "metrics")
    assert code == 1
    assert "alert LivetopicStreamLagHigh: metric livetopic_lag is not exported" in out
    assert "variable $instance: metric livetopic_readiness is not exported" in out


def test_a_query_that_does_not_parse_fails(tmp_path: Path) -> None:
    need("promtool")
    out = fails(
        tmp_path,
        DASHBOARD,
        swap("max by (stream) (livetopic_stream_length)", "max by (stream) (livetopic_stream_length"),
        "metrics",
    )
    assert 'promtool cannot parse panel "Stream length" query A' in out


def test_replicas_that_disagree_fail(tmp_path: Path) -> None:
    need("kubectl")
    out = fails(tmp_path, "k8s/hpa.yaml", swap("minReplicas: 2", "minReplicas: 3"), "agreement")
    assert "hpa.yaml minReplicas (3) and keda-scaledobject.yaml minReplicaCount (2) disagree" in out
    out = fails(tmp_path / "2", "README.md", swap("`lagCount` 1000", "`lagCount` 500"), "agreement")
    assert "deploy/README.md says lagCount 500, the manifests 1000" in out


def test_each_overlay_has_one_autoscaler(tmp_path: Path) -> None:
    need("kubectl")
    code, out = check(DEPLOY, "overlays")
    assert code == 0, out
    for name, scaler in [
        ("k8s", "HorizontalPodAutoscaler"),
        ("overlays/keda", "ScaledObject"),
        ("overlays/production", "HorizontalPodAutoscaler, images by digest"),
    ]:
        assert f"    {name}: " in out and f"autoscaler {scaler}" in out, out
    out = fails(
        tmp_path, "overlays/keda/kustomization.yaml", lambda text: text.split("patches:")[0], "overlays"
    )  # the base's HPA is not deleted
    assert (
        "overlays/keda: 2 autoscalers (HPA/livetopic-worker, ScaledObject/livetopic-worker); exactly one HPA wanted"
    ) in out


def test_replicas_a_secret_or_a_tag_fail(tmp_path: Path) -> None:
    need("kubectl")
    copy = broken_copy(
        tmp_path, "k8s/deployment.yaml", swap("  revisionHistoryLimit", "  replicas: 2\n  revisionHistoryLimit")
    )
    base = copy / "k8s" / "kustomization.yaml"
    base.write_text(base.read_text().replace("  - pvc.yaml", "  - secret.example.yaml\n  - pvc.yaml"))
    prod = copy / "overlays" / "production" / "kustomization.yaml"
    prod.write_text(prod.read_text().replace("    digest: sha256:", '    newTag: "0.1.0"  # '))
    code, out = check(copy, "overlays")
    assert code == 1
    assert "k8s: Deployment/livetopic-worker sets replicas under an autoscaler" in out
    assert "overlays/keda: Secret/livetopic-redis is in the manifests" in out
    assert "no overlay pins the images by digest" in out


def test_a_field_keda_does_not_know_fails(tmp_path: Path) -> None:
    need("kubectl", "kubernetes_validate")
    out = fails(
        tmp_path,
        "overlays/keda/keda-scaledobject.yaml",
        swap('lagCount: "1000"', 'lagCount: 1000\n        lagCounts: "5"'),
        "kubernetes",
    )
    assert "metadata.lagCount: must be a string" in out and "metadata.lagCounts: not a redis-streams parameter" in out


def test_an_alert_without_a_silent_case_fails(tmp_path: Path) -> None:
    need("promtool")

    def drop_silent(text: str) -> str:
        return text.replace(
            """      - eval_time: 1m
        alertname: LivetopicModelReloadFailing
        exp_alerts: []          # a successful reload alone
""",
            "",
        ).replace(
            """      - eval_time: 25m
        alertname: LivetopicModelReloadFailing
        exp_alerts: []
""",
            "",
        )

    out = fails(tmp_path, "prometheus/alerts.test.yml", drop_silent, "prometheus")
    assert "no case where LivetopicModelReloadFailing silent" in out


def test_metric_names_of_promql() -> None:
    assert metric_names('sum by (le) (rate(a_bucket{x="y", z=~"$v"}[$__rate_interval]))') == {"a_bucket"}
    assert metric_names("max(m_info) by (name, version) / on(instance) group_left(job) up == 0") == {"m_info", "up"}
    assert metric_names('(sum(rate(c_total{o="x"}[10m])) or vector(0)) == 0 and on() (max(g) > 1e-9)') == {
        "c_total",
        "g",
    }
    assert metric_names("histogram_quantile(0.99, rate(h_bucket[5m] offset 1h)) > 5") == {"h_bucket"}
