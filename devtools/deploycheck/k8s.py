"""deploy/k8s as Kubernetes sees it: rendered by ``kubectl kustomize`` (the core set, and once more with the
optional files commented out of kustomization.yaml added), every built-in object validated strictly against
the schema of a pinned Kubernetes version (kubernetes-validate), the custom resources against their CRDs'
fields (crds.py), and the HPA that KEDA would create from the ScaledObject validated as an HPA."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .crds import AUTH_PARAMETERS, SPECS, check_fields, check_redis_streams_trigger

__all__ = ["K8S_VERSION", "keda_hpa", "load_yaml_docs", "render", "render_with_optional", "validate_objects"]

# The Kubernetes version the manifests are validated against (kubernetes-validate ships its schemas).
K8S_VERSION = "1.32.0"


def load_yaml_docs(text: str) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(kustomize_dir: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR`` (or ``kustomize build DIR``) → the objects; raises RuntimeError with its output."""
    if shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(kustomize_dir)]
    elif shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(kustomize_dir)]
    else:
        raise RuntimeError("neither kubectl nor kustomize is on PATH (apt-get install kubernetes-client)")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return load_yaml_docs(proc.stdout)


def render_with_optional(k8s_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(core objects, core + optional objects, names of the optional files): the optional files are the
    manifests next to kustomization.yaml that it does not list (KEDA, ServiceMonitor, trainer Job)."""
    import yaml

    core = render(k8s_dir)
    kustomization = yaml.safe_load((k8s_dir / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    optional = sorted(p.name for p in k8s_dir.glob("*.yaml") if p.name != "kustomization.yaml" and p.name not in listed)
    with tempfile.TemporaryDirectory(prefix="livetopic-k8s-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(k8s_dir, copy)
        kustomization["resources"] = [*kustomization.get("resources", []), *optional]
        (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        everything = render(copy)
    return core, everything, optional


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def keda_hpa(scaled_object: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v2 HPA that KEDA creates for ``scaled_object`` (one external metric per trigger)."""
    spec = scaled_object["spec"]
    target = spec["scaleTargetRef"]
    hpa_config = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    hpa_spec: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": target.get("apiVersion", "apps/v1"),
            "kind": target.get("kind", "Deployment"),
            "name": target["name"],
        },
        "minReplicas": max(1, int(spec.get("minReplicaCount", 0))),
        "maxReplicas": int(spec.get("maxReplicaCount", 100)),
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {"name": f"s{i}-{trigger['type']}"},
                    "target": {"type": trigger.get("metricType", "AverageValue"), "averageValue": "1"},
                },
            }
            for i, trigger in enumerate(spec.get("triggers", []))
        ],
    }
    if "behavior" in hpa_config:
        hpa_spec["behavior"] = hpa_config["behavior"]
    name = hpa_config.get("name") or f"keda-hpa-{scaled_object['metadata']['name']}"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": scaled_object["metadata"].get("namespace", "default")},
        "spec": hpa_spec,
    }


def _validate_builtin(obj: dict[str, Any], version: str) -> list[str]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except SchemaNotFoundError:
        return [
            f"{_name(obj)}: {obj.get('apiVersion')} {obj.get('kind')} is neither in Kubernetes {version} "
            "nor a custom resource this check knows"
        ]
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        return [f"{_name(obj)}: {where}: {exc.message}"]
    return []


def _check_custom(obj: dict[str, Any], objects: Iterable[dict[str, Any]], version: str) -> list[str]:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    problems = check_fields(obj, SPECS[key], _name(obj))
    if key[1] != "ScaledObject" or any(not p.endswith("not a field of this kind") for p in problems):
        return problems  # a ScaledObject whose shape is wrong is not read any further
    auths = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "TriggerAuthentication"}
    for i, trigger in enumerate(obj["spec"]["triggers"]):
        where = f"{_name(obj)}.spec.triggers[{i}]"
        if trigger["type"] in ("redis-streams", "redis-cluster-streams", "redis-sentinel-streams"):
            problems += check_redis_streams_trigger(trigger["metadata"], f"{where}.metadata")
        ref = trigger.get("authenticationRef", {}).get("name")
        if ref is not None and ref not in auths:
            problems.append(f"{where}.authenticationRef: no TriggerAuthentication {ref!r} in the manifests")
        elif ref is not None:
            unknown = [
                r["parameter"]
                for r in auths[ref]["spec"].get("secretTargetRef", [])
                if r["parameter"] not in AUTH_PARAMETERS
            ]
            problems += [
                f"TriggerAuthentication/{ref}: parameter {p!r} is not one of the trigger's "
                f"({', '.join(sorted(AUTH_PARAMETERS))})"
                for p in unknown
            ]
    hpa = keda_hpa(obj)
    problems += [f"{_name(obj)} (as the HPA KEDA creates): {p}" for p in _validate_builtin(hpa, version)]
    return problems


def validate_objects(
    objects: list[dict[str, Any]], version: str = K8S_VERSION, context: Iterable[dict[str, Any]] = ()
) -> list[str]:
    """Problems of ``objects`` (``context``: objects applied beside them, that they may refer to)."""
    problems: list[str] = []
    known = [*objects, *context]
    for obj in objects:
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        problems += _check_custom(obj, known, version) if key in SPECS else _validate_builtin(obj, version)
    return problems
