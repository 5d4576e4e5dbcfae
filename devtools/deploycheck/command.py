"""The steps of ``make check-deploy``, their order, and the report."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .agreement import check_agreement
from .compose import check_compose
from .k8s import K8S_VERSION, render, render_with_optional, validate_objects
from .overlays import BASE, check_renders, render_all
from .prom import check_metrics, check_prometheus

__all__ = ["STEPS", "main", "run_steps"]

Result = tuple[list[str], list[str]]


def check_yaml(deploy_dir: Path) -> Result:
    """yamllint over deploy/, with deploy/.yamllint."""
    exe = str(Path(sys.executable).with_name("yamllint"))  # the pinned one of the [deploy] extra first
    if not Path(exe).exists():
        exe = shutil.which("yamllint") or exe
    if not Path(exe).exists():
        return [], ["yamllint is not installed (pip install the [deploy] extra)"]
    proc = subprocess.run(
        [exe, "--strict", "-c", str(deploy_dir / ".yamllint"), str(deploy_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    problems = [] if proc.returncode == 0 else [f"yamllint:\n{(proc.stdout + proc.stderr).strip()}"]
    return [f"yamllint --strict {deploy_dir}"], problems


class _Kubernetes:
    """Renders deploy/k8s (the base, and with its optional files) and each overlay once, for the kubernetes,
    overlays and agreement steps."""

    def __init__(self, deploy_dir: Path, version: str) -> None:
        self.deploy_dir, self.version = deploy_dir, version
        self._rendered: tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]] | None = None
        self._renders: dict[str, list[dict[str, Any]]] | None = None

    def rendered(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        if self._rendered is None:
            self._rendered = render_with_optional(self.deploy_dir / "k8s")
        return self._rendered

    def renders(self) -> dict[str, list[dict[str, Any]]]:
        if self._renders is None:
            self._renders = render_all(self.deploy_dir)
        return self._renders

    def schemas(self) -> Result:
        core, everything, optional = self.rendered()
        overlays = {name: objects for name, objects in self.renders().items() if name != BASE}
        kinds = sorted({f"{o['kind']}/{o['metadata']['name']}" for o in everything})
        done = [
            f"kubectl kustomize: {len(core)} core objects, {len(everything)} with {', '.join(optional)}; "
            f"overlays {', '.join(overlays) or 'none'}",
            f"Kubernetes {self.version} schemas (strict) and CRD fields: {', '.join(kinds)}, and each overlay's",
        ]
        problems = validate_objects(everything, self.version)
        for name, objects in overlays.items():
            problems += [f"{name}: {p}" for p in validate_objects(objects, self.version)]
        cluster_dir = self.deploy_dir / "redis-cluster"  # the Redis Cluster option, applied after deploy/k8s
        if (cluster_dir / "kustomization.yaml").exists():
            cluster = render(cluster_dir)
            done.append(f"kubectl kustomize {cluster_dir.name}: {len(cluster)} objects, checked the same way")
            problems += validate_objects(cluster, self.version, context=everything)
        return done, problems

    def overlays(self) -> Result:
        return check_renders(self.deploy_dir, self.renders())

    def agreement(self) -> Result:
        """Over the base with its optional files, and the KEDA overlay's ScaledObject (the numbers both share)."""
        keda = [o for objects in self.renders().values() for o in objects if o.get("kind") == "ScaledObject"]
        auth = [o for objects in self.renders().values() for o in objects if o.get("kind") == "TriggerAuthentication"]
        return check_agreement([*self.rendered()[1], *keda[:1], *auth[:1]], self.deploy_dir)


STEPS = ("yaml", "kubernetes", "overlays", "agreement", "prometheus", "metrics", "compose")


def run_steps(
    deploy_dir: Path, steps: tuple[str, ...] = STEPS, version: str = K8S_VERSION, say: Callable[[str], None] = print
) -> int:
    """Run ``steps``; returns the number of problems found (each said)."""
    k8s = _Kubernetes(deploy_dir, version)
    runners: dict[str, Callable[[], Result]] = {
        "yaml": lambda: check_yaml(deploy_dir),
        "kubernetes": k8s.schemas,
        "overlays": k8s.overlays,
        "agreement": k8s.agreement,
        "prometheus": lambda: check_prometheus(deploy_dir),
        "metrics": lambda: check_metrics(deploy_dir),
        "compose": lambda: check_compose(deploy_dir),
    }
    count = 0
    for step in steps:
        try:
            done, problems = runners[step]()
        except RuntimeError as exc:  # a tool that failed to run (kubectl kustomize, …)
            done, problems = [], [str(exc)]
        say(f"[{'ok' if not problems else 'FAIL'}] {step}")
        for line in done:
            say(f"    {line}")
        for problem in problems:
            say("    PROBLEM: " + problem.replace("\n", "\n        "))
        count += len(problems)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.deploycheck",
        allow_abbrev=False,
        description="Check deploy/ with the real tools and against the worker.",
    )
    parser.add_argument("--deploy-dir", type=Path, default=Path("deploy"))
    parser.add_argument("--only", nargs="+", choices=STEPS, help="run only these steps")
    parser.add_argument("--kubernetes-version", default=K8S_VERSION)
    args = parser.parse_args(argv)
    problems = run_steps(args.deploy_dir, tuple(args.only or STEPS), args.kubernetes_version)
    print(f"check-deploy: {problems} problem(s)" if problems else "check-deploy: all checks passed")
    return 1 if problems else 0
