"""Every way deploy/ is applied: the base (deploy/k8s) and each overlay (deploy/overlays/*), rendered with
``kubectl kustomize``, and what must hold in each: exactly one autoscaler of the workers (the base's CPU HPA, or
a KEDA ScaledObject that replaces it: KEDA makes its own HPA, and two HPAs on one Deployment fight), no
``replicas`` on a Deployment an autoscaler owns (every apply would reset it), no Secret (the password is created
outside the manifests, in one place), and images pinned by digest in an overlay that pins any."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .k8s import render

__all__ = ["BASE", "check_renders", "kustomizations", "render_all"]

Objects = list[dict[str, Any]]
BASE = "k8s"


def kustomizations(deploy_dir: Path) -> dict[str, Path]:
    """name → directory: ``k8s`` (the base) and ``overlays/<name>`` for each overlay."""
    found = {BASE: deploy_dir / "k8s"}
    overlays = deploy_dir / "overlays"
    if overlays.is_dir():
        for path in sorted(overlays.iterdir()):
            if (path / "kustomization.yaml").is_file():
                found[f"overlays/{path.name}"] = path
    return found


def render_all(deploy_dir: Path) -> dict[str, Objects]:
    return {name: render(path) for name, path in kustomizations(deploy_dir).items()}


def _images(objects: Objects) -> list[str]:
    images = []
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            images.append(container["image"])
    return images


def _pins(path: Path) -> bool:
    import yaml

    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text(encoding="utf-8"))
    return any("digest" in image for image in kustomization.get("images", []))


def _autoscaled(name: str, objects: Objects) -> list[str]:
    hpas = [o for o in objects if o.get("kind") == "HorizontalPodAutoscaler"]
    scaled = [o for o in objects if o.get("kind") == "ScaledObject"]
    problems = []
    if len(hpas) + len(scaled) != 1:
        what = [f"HPA/{o['metadata']['name']}" for o in hpas]
        what += [f"ScaledObject/{o['metadata']['name']}" for o in scaled]
        problems.append(f"{name}: {len(what)} autoscalers ({', '.join(what) or 'none'}); exactly one HPA wanted")
    targets = {o["spec"]["scaleTargetRef"]["name"] for o in hpas + scaled}
    problems += [
        f"{name}: Deployment/{o['metadata']['name']} sets replicas under an autoscaler (every apply resets it)"
        for o in objects
        if o.get("kind") == "Deployment" and o["metadata"]["name"] in targets and "replicas" in o["spec"]
    ]
    return problems


def check_renders(deploy_dir: Path, renders: dict[str, Objects]) -> tuple[list[str], list[str]]:
    """(what was checked, problems) over every rendering."""
    paths = kustomizations(deploy_dir)
    problems: list[str] = []
    done = []
    for name, objects in renders.items():
        problems += _autoscaled(name, objects)
        problems += [
            f"{name}: Secret/{o['metadata']['name']} is in the manifests (create it outside: k8s/secret.example.yaml)"
            for o in objects
            if o.get("kind") == "Secret"
        ]
        pinned = _pins(paths[name])
        if pinned:
            problems += [f"{name}: image {i} is not pinned by digest" for i in _images(objects) if "@sha256:" not in i]
        scaler = next((o["kind"] for o in objects if o.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject")), "-")
        done.append(f"{name}: {len(objects)} objects, autoscaler {scaler}{', images by digest' if pinned else ''}")
    if not any(_pins(path) for path in paths.values()):
        problems.append("no overlay pins the images by digest (images: … digest:)")
    return done, problems
