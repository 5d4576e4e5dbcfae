"""The numbers and names that several deploy files state, checked to agree: replicas and scaling behavior
(Deployment, HPA, KEDA ScaledObject, compose, deploy/README.md), the stream and group the KEDA trigger
watches (the ConfigMap's), the settings the ConfigMap and Deployment pass (the worker's), CPU and threads,
the dashboard's lagCount, the Service and ServiceMonitor, and the scrape job the alerts expect."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compose import known_env, load_compose
from .prom import load_dashboard
from .promql import dashboard_variables

__all__ = ["check_agreement", "facts"]

Objects = list[dict[str, Any]]


def _one(objects: Objects, kind: str) -> dict[str, Any]:
    found = [o for o in objects if o.get("kind") == kind]
    if len(found) != 1:
        raise LookupError(f"expected one {kind} in deploy/k8s, found {len(found)}")
    return found[0]


def _cpu(value: Any) -> float:
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _gib(value: Any) -> float:
    text = str(value)
    units = {"Gi": 1.0, "Mi": 1 / 1024}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    raise ValueError(f"memory {text!r}: expected Gi or Mi")


def facts(objects: Objects, deploy_dir: Path) -> dict[str, Any]:
    """The numbers the other files must agree with, read from the manifests."""
    deployment, hpa, scaled = (
        _one(objects, "Deployment"),
        _one(objects, "HorizontalPodAutoscaler"),
        _one(objects, "ScaledObject"),
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    compose_worker = load_compose(deploy_dir / "docker-compose.yml")["services"]["worker"]
    return {
        "deployment": deployment,
        "hpa": hpa,
        "scaled": scaled,
        "container": container,
        "trigger": trigger,
        "config": _one(objects, "ConfigMap")["data"],
        "compose_worker": compose_worker,
        "replicas": hpa["spec"]["minReplicas"],  # the floor (the Deployment sets none: the autoscaler owns it)
        "max": hpa["spec"]["maxReplicas"],
        "cpu": _cpu(container["resources"]["limits"]["cpu"]),
        "memory": (
            _gib(container["resources"]["requests"]["memory"]),
            _gib(container["resources"]["limits"]["memory"]),
        ),
        "lag_count": int(trigger["lagCount"]),
        "activation": int(trigger["activationLagCount"]),
    }


def _scaling(f: dict[str, Any]) -> list[str]:
    hpa, scaled = f["hpa"]["spec"], f["scaled"]["spec"]
    checks = [
        (
            "hpa.yaml minReplicas",
            f["replicas"],
            "keda-scaledobject.yaml minReplicaCount",
            scaled["minReplicaCount"],
        ),
        (
            "hpa.yaml maxReplicas",
            hpa["maxReplicas"],
            "keda-scaledobject.yaml maxReplicaCount",
            scaled["maxReplicaCount"],
        ),
        (
            "hpa.yaml behavior",
            hpa.get("behavior"),
            "keda-scaledobject.yaml advanced.horizontalPodAutoscalerConfig.behavior",
            scaled.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior"),
        ),
        (
            "deployment.yaml name",
            f["deployment"]["metadata"]["name"],
            "hpa.yaml scaleTargetRef.name",
            hpa["scaleTargetRef"]["name"],
        ),
        (
            "deployment.yaml name",
            f["deployment"]["metadata"]["name"],
            "keda-scaledobject.yaml scaleTargetRef.name",
            scaled["scaleTargetRef"]["name"],
        ),
        (
            "hpa.yaml minReplicas",
            f["replicas"],
            "docker-compose.yml worker deploy.replicas",
            f["compose_worker"].get("deploy", {}).get("replicas"),
        ),
        (
            "configmap.yaml LIVETOPIC_INPUT_STREAM",
            f["config"].get("LIVETOPIC_INPUT_STREAM"),
            "keda-scaledobject.yaml stream",
            f["trigger"].get("stream"),
        ),
        (
            "configmap.yaml LIVETOPIC_GROUP",
            f["config"].get("LIVETOPIC_GROUP"),
            "keda-scaledobject.yaml consumerGroup",
            f["trigger"].get("consumerGroup"),
        ),
    ]
    return [f"{a} ({va!r}) and {b} ({vb!r}) disagree" for a, va, b, vb in checks if va != vb]


def _worker_settings(f: dict[str, Any]) -> list[str]:
    known, container = known_env(), f["container"]
    problems = [
        f"configmap.yaml: {k} is not a livetopic setting (the worker would refuse to start)"
        for k in f["config"]
        if k.startswith("LIVETOPIC_") and k not in known
    ]
    problems += [
        f"deployment.yaml: env {e['name']} is not a livetopic setting"
        for e in container.get("env", [])
        if e["name"].startswith("LIVETOPIC_") and e["name"] not in known
    ]
    resources = container["resources"]
    if _cpu(resources["requests"]["cpu"]) != f["cpu"]:
        problems.append("deployment.yaml: CPU request and limit differ (torch gets throttled)")
    threads = f["config"].get("LIVETOPIC_TORCH_THREADS")
    if threads is not None and float(threads) != f["cpu"]:
        problems.append(f"configmap.yaml LIVETOPIC_TORCH_THREADS ({threads}) is not the CPU limit ({f['cpu']:g})")
    compose_cpus = f["compose_worker"].get("deploy", {}).get("resources", {}).get("limits", {}).get("cpus")
    if compose_cpus is not None and float(compose_cpus) != f["cpu"]:
        problems.append(
            f"docker-compose.yml worker cpus ({compose_cpus}) and deployment.yaml CPU ({f['cpu']:g}) differ"
        )
    return problems


def _monitoring(objects: Objects, f: dict[str, Any], deploy_dir: Path) -> list[str]:
    import yaml

    problems = []
    monitor = _one(objects, "ServiceMonitor")
    services = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Service"}
    pod_labels = f["deployment"]["spec"]["template"]["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    worker_services = [
        s for s in services.values() if all(s["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
    ]
    if len(worker_services) != 1:
        problems.append(f"servicemonitor.yaml selects {len(worker_services)} Services; expected the workers' one")
    for svc in worker_services:
        if any(pod_labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            problems.append(f"Service {svc['metadata']['name']} does not select the worker pods")
        ports = {p.get("name") for p in svc["spec"]["ports"]}
        problems += [
            f"servicemonitor.yaml port {e['port']!r} is not a port of Service {svc['metadata']['name']}"
            for e in monitor["spec"]["endpoints"]
            if e.get("port") not in ports
        ]
        job = svc["metadata"].get("labels", {}).get(monitor["spec"].get("jobLabel", ""), svc["metadata"]["name"])
        alerts = (deploy_dir / "prometheus" / "alerts.yml").read_text()
        compose_jobs = {
            j["job_name"]
            for j in yaml.safe_load((deploy_dir / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
        }
        for wanted in set(re.findall(r'job="([^"]+)"', alerts)):
            if wanted != job:
                problems.append(f"alerts.yml expects job {wanted!r}, the ServiceMonitor gives {job!r}")
            if wanted not in compose_jobs:
                problems.append(f"alerts.yml expects job {wanted!r}, prometheus.yml has no such scrape job")
    lag_constant = dashboard_variables(load_dashboard(deploy_dir)).get("lag_count")
    if lag_constant is not None and int(lag_constant) != f["lag_count"]:
        problems.append(
            f"dashboard constant lag_count ({lag_constant}) and keda-scaledobject.yaml lagCount "
            f"({f['lag_count']}) differ"
        )
    return problems


# What deploy/README.md states, as (what, pattern, the manifests' value from the facts).
_README: list[tuple[str, str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = [
    ("worker replicas", r"Worker Deployment \(no `replicas`: the autoscaler's, from (\d+)", lambda f: (f["replicas"],)),
    ("worker CPU", r"Worker Deployment \([^|]*?CPU (\d+(?:\.\d+)?)", lambda f: (f["cpu"],)),
    ("worker memory", r"Worker Deployment \([^|]*?memory (\d+(?:\.\d+)?)–(\d+(?:\.\d+)?) GiB", lambda f: f["memory"]),
    ("HPA replicas", r"CPU-based HPA, (\d+)–(\d+) replicas", lambda f: (f["replicas"], f["max"])),
    (
        "ScaledObject replicas",
        r"KEDA `redis-streams` trigger[^|]*?(\d+)–(\d+) replicas",
        lambda f: (f["replicas"], f["max"]),
    ),
    ("lagCount", r"`lagCount` (\d+)", lambda f: (f["lag_count"],)),
    ("activationLagCount", r"`activationLagCount` (\d+)", lambda f: (f["activation"],)),
    ("compose worker replicas", r"`worker` runs (\d+) replicas", lambda f: (f["replicas"],)),
]


def _readme(f: dict[str, Any], deploy_dir: Path) -> list[str]:
    text = (deploy_dir / "README.md").read_text(encoding="utf-8")
    problems = []
    for what, pattern, value in _README:
        wanted = tuple(float(v) for v in value(f))
        found = [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, text)]
        if not found:
            problems.append(f"deploy/README.md no longer states the {what} (pattern {pattern!r})")
        problems += [
            f"deploy/README.md says {what} {'–'.join(f'{x:g}' for x in got)}, the manifests "
            f"{'–'.join(f'{x:g}' for x in wanted)}"
            for got in found
            if got != wanted
        ]
    return problems


def check_agreement(objects: Objects, deploy_dir: Path) -> tuple[list[str], list[str]]:
    """(what was checked, problems), over the rendered objects (core and optional)."""
    try:
        f = facts(objects, deploy_dir)
    except (LookupError, KeyError, ValueError) as exc:
        return [], [f"cannot read the manifests' numbers: {exc!r}"]
    problems = _scaling(f) + _worker_settings(f) + _monitoring(objects, f, deploy_dir) + _readme(f, deploy_dir)
    done = [
        f"replicas {f['replicas']}–{f['max']}, behavior, CPU {f['cpu']:g}, lagCount {f['lag_count']}, stream "
        "and group, settings, Service/ServiceMonitor/alert job, deploy/README.md numbers"
    ]
    return done, problems
