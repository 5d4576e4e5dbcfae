"""deploy/prometheus and deploy/grafana against the real tools and the worker: ``promtool check config``,
``check rules`` and ``test rules`` (with a test where each alert fires and one where it stays silent), every
dashboard query parsed by promtool, and every metric that a query or an alert selects exported by the
worker (so a renamed metric fails here, before any Prometheus shows an empty panel)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from worker.service.metrics import Metrics

from .promql import (
    Expression,
    alert_expressions,
    dashboard_expressions,
    dashboard_variables,
    grafana_substitute,
    metric_names,
    variable_metric,
    variable_queries,
)

__all__ = ["EXTERNAL_SERIES", "check_metrics", "check_prometheus", "dashboard_path", "promtool"]

# Series that Prometheus itself adds to every scrape target.
EXTERNAL_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def dashboard_path(deploy_dir: Path) -> Path:
    return deploy_dir / "grafana" / "livetopic-dashboard.json"


def promtool(*args: str) -> tuple[bool, str]:
    """Run ``promtool ARGS``: (succeeded, its output)."""
    if shutil.which("promtool") is None:
        return False, "promtool is not on PATH (apt-get install prometheus)"
    proc = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False, timeout=120)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def _alert_tests(test_file: Path) -> dict[str, set[str]]:
    """alert name → {"fires", "silent"}: the kinds of expectations alerts.test.yml has for it."""
    import yaml

    seen: dict[str, set[str]] = {}
    for test in yaml.safe_load(test_file.read_text()).get("tests", []):
        for case in test.get("alert_rule_test", []):
            seen.setdefault(case["alertname"], set()).add("fires" if case.get("exp_alerts") else "silent")
    return seen


def check_prometheus(deploy_dir: Path) -> tuple[list[str], list[str]]:
    """(what was checked, problems)."""
    import yaml

    prom = deploy_dir / "prometheus"
    problems: list[str] = []
    for args in (
        ("check", "config", str(prom / "prometheus.yml")),
        ("check", "rules", str(prom / "alerts.yml")),
        ("test", "rules", str(prom / "alerts.test.yml")),
    ):
        ok, output = promtool(*args)
        if not ok:
            problems.append(f"promtool {' '.join(args)}:\n{output}")
    alerts = [
        e.where.split(" ", 1)[1]
        for e in alert_expressions(yaml.safe_load((prom / "alerts.yml").read_text()))
        if e.where.startswith("alert ")
    ]
    tested = _alert_tests(prom / "alerts.test.yml")
    for alert in alerts:
        for kind in ("fires", "silent"):
            if kind not in tested.get(alert, set()):
                problems.append(
                    f"alerts.test.yml has no case where {alert} {kind} "
                    f"({'non-empty' if kind == 'fires' else 'empty'} exp_alerts)"
                )
    problems += [
        f"alerts.test.yml tests {name}, which alerts.yml does not define" for name in tested if name not in alerts
    ]
    done = [
        "promtool check config prometheus.yml, check rules alerts.yml, test rules alerts.test.yml",
        f"each of {len(alerts)} alerts has a firing and a silent test",
    ]
    return done, problems


def _parse_with_promtool(expressions: list[Expression]) -> list[str]:
    """Every expression through Prometheus' own parser: as recording rules of a scratch rule file."""
    import yaml

    rules = [{"record": f"dashboard:query_{i}", "expr": e.expr} for i, e in enumerate(expressions)]
    with tempfile.TemporaryDirectory(prefix="livetopic-promql-") as tmp:
        path = Path(tmp) / "dashboard.rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        ok, output = promtool("check", "rules", str(path))
    if ok:
        return []
    indexes = {int(m) for m in re.findall(r"dashboard:query_(\d+)", output)}
    where = ", ".join(expressions[i].where for i in sorted(indexes)) or "the dashboard's queries"
    return [f"promtool cannot parse {where}:\n{output}"]


def load_dashboard(deploy_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dashboard_path(deploy_dir).read_text(encoding="utf-8"))
    return data


def check_metrics(deploy_dir: Path) -> tuple[list[str], list[str]]:
    """(what was checked, problems): the metrics the dashboard and the alerts use exist, and parse."""
    import yaml

    known = Metrics().series_names() | EXTERNAL_SERIES
    dashboard = load_dashboard(deploy_dir)
    try:
        values = dashboard_variables(dashboard)
        panels = [Expression(e.where, grafana_substitute(e.expr, values)) for e in dashboard_expressions(dashboard)]
    except KeyError as exc:
        return [], [f"dashboard: {exc.args[0]}"]
    rules = alert_expressions(yaml.safe_load((deploy_dir / "prometheus" / "alerts.yml").read_text()))
    problems = []
    for expression in [*panels, *rules]:
        for name in sorted(metric_names(expression.expr) - known):
            problems.append(
                f"{expression.where}: metric {name} is not exported by the worker "
                f"(worker/service/metrics.py) nor by Prometheus"
            )
    for var in variable_queries(dashboard):
        selected = variable_metric(var.expr)
        if selected is None:
            problems.append(f"dashboard {var.where}: {var.expr!r} is not label_values(metric, label)")
        elif selected[0] not in known:
            problems.append(f"dashboard {var.where}: metric {selected[0]} is not exported by the worker")
    problems += _parse_with_promtool(panels)
    done = [
        f"{len(panels)} dashboard queries and {len(rules)} alert expressions select only metrics the worker "
        f"exports ({len(known)} series names); the dashboard's queries parse (promtool)"
    ]
    return done, problems
