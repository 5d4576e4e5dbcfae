"""PromQL as the deploy files hold it: the expressions of a Grafana dashboard and of Prometheus rule files,
Grafana's template variables substituted, and the metric names an expression selects.

Not a PromQL parser: enough of the grammar (strings, label matchers, ranges, grouping clauses, functions,
keywords, numbers and durations) to find the metric names, which is what a renamed metric breaks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Expression",
    "alert_expressions",
    "dashboard_expressions",
    "dashboard_variables",
    "grafana_substitute",
    "metric_names",
    "variable_metric",
    "variable_queries",
]

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|s|m|h|d|w|y)?)+(?![\w:])")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


@dataclass(frozen=True, slots=True)
class Expression:
    where: str  # e.g. 'panel "Topic heat" target A' or 'alert LivetopicWorkerDown'
    expr: str


def grafana_substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` / ``[[name]]`` variables replaced from ``values``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", value, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names that ``expr`` selects (``up``, ``livetopic_comments_total``…)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\$\{?\w+\}?", " 1 ", text)  # Grafana variables left in
    previous = None
    while previous != text:  # nested grouping clauses are flat: one pass usually
        previous, text = text, _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group(0)
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or name.lower() in _KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(name)
    return names


def variable_metric(query: str) -> tuple[str, str] | None:
    """``label_values(metric, label)`` → (metric, label); other variable queries → None."""
    match = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)\s*", query)
    return (match.group(1), match.group(2)) if match else None


def dashboard_variables(
    dashboard: Mapping[str, Any], *, rate_interval: str = "1m", range_: str = "1h"
) -> dict[str, str]:
    """Values for every template variable of ``dashboard`` as Grafana sends them with everything selected:
    a query variable's "All" value, a constant's value, and Grafana's built-in intervals."""
    values = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": range_,
        "datasource": "prometheus",
    }
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "constant":
            values[var["name"]] = str(var["query"])
        elif var.get("type") in ("query", "custom", "textbox"):
            values[var["name"]] = var.get("allValue") or ".*"
    return values


def variable_queries(dashboard: Mapping[str, Any]) -> list[Expression]:
    """The query of every query variable (``label_values(...)`` and the like)."""
    found = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, Mapping) else str(query or var.get("definition", ""))
            found.append(Expression(f"variable ${var['name']}", text))
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold their panels


def dashboard_expressions(dashboard: Mapping[str, Any]) -> list[Expression]:
    """Every Prometheus query of every panel of a Grafana dashboard (JSON model), hidden ones included."""
    found = []
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                found.append(
                    Expression(f'panel "{panel.get("title", panel.get("id"))}" query {target.get("refId")}', expr)
                )
    return found


def alert_expressions(rules: Mapping[str, Any]) -> list[Expression]:
    """Every alerting and recording rule expression of a Prometheus rule file."""
    found = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            kind = "alert" if "alert" in rule else "record"
            found.append(Expression(f"{kind} {name}", str(rule["expr"])))
    return found
