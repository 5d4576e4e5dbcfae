"""deploy/README.md against the code and the manifests: its settings table against worker/settings.py (the
defaults) and k8s/configmap.yaml (what Kubernetes sets), the grace period, its claims about .dockerignore and the
trainer Job's image. (Its replicas, CPU, memory and scaling numbers: devtools/deploycheck, make check-deploy.)
Each check reads the values from the files, so a changed manifest or default fails here until the README says
the same."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from worker.settings import ENV_PREFIX, Settings

from .conftest import ROOT

DEPLOY = ROOT / "deploy"
README = (DEPLOY / "README.md").read_text(encoding="utf-8")


def _k8s(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text(encoding="utf-8")) if doc]


def _one(name: str, kind: str) -> dict[str, Any]:
    found = [doc for doc in _k8s(name) if doc.get("kind") == kind]
    assert len(found) == 1, f"{name}: expected one {kind}"
    return found[0]


def _value(cell: str) -> str:
    cell = cell.strip("`")
    return "" if cell == "empty" else cell


def settings_table(text: str) -> dict[str, tuple[str, str]]:
    """``LIVETOPIC_X`` → (default cell, configmap cell) of the README's settings table ("empty" is "")."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(rf"`{ENV_PREFIX}[A-Z_]+`", cells[0]):
            rows[cells[0].strip("`")] = (_value(cells[1]), _value(cells[2]))
    return rows


TABLE = settings_table(README)
CONFIGMAP: dict[str, str] = {k: str(v) for k, v in _one("configmap.yaml", "ConfigMap")["data"].items()}


def test_the_table_is_found() -> None:
    assert len(TABLE) >= 15, "deploy/README.md's settings table (| `LIVETOPIC_…` | default | configmap | …) moved"


@pytest.mark.parametrize("variable", sorted(TABLE))
def test_default_column_is_the_settings_default(variable: str) -> None:
    name = variable.removeprefix(ENV_PREFIX).lower()
    assert name in Settings.model_fields, f"{variable} is not a setting: the worker would refuse to start"
    field = Settings.model_fields[name]
    stated = TABLE[variable][0]
    if field.default_factory is not None or field.default is None:
        assert stated not in ("", "–") or field.default is None, f"{variable}: say what the default is"
        return  # computed or unset: described in words (`<hostname>-<pid>`, all cores, –)
    value = getattr(Settings(**{name: stated}), name)  # parsed as the setting parses its variable
    assert value == field.default, f"deploy/README.md says {variable} defaults to {stated}, the code {field.default}"


@pytest.mark.parametrize("variable", sorted(TABLE))
def test_configmap_column_is_what_kubernetes_sets(variable: str) -> None:
    stated = TABLE[variable][1]
    assert stated == CONFIGMAP.get(variable, "–"), (
        f"deploy/README.md says configmap.yaml sets {variable} to {stated}, it sets {CONFIGMAP.get(variable, '–')}"
    )


def test_every_configmap_setting_is_in_the_table() -> None:
    assert sorted(set(CONFIGMAP) - set(TABLE)) == []


def test_the_grace_period_matches_the_manifests() -> None:
    """(Replicas, CPU, memory and the autoscalers' ranges in the README: ``make check-deploy``'s agreement check.)"""
    pod = _one("deployment.yaml", "Deployment")["spec"]["template"]["spec"]
    found = set(re.findall(r"`terminationGracePeriodSeconds: (\d+)`", README))
    assert found == {str(pod["terminationGracePeriodSeconds"])}, found
    grace = float(CONFIGMAP["LIVETOPIC_SHUTDOWN_GRACE_S"])
    assert grace < pod["terminationGracePeriodSeconds"], "the worker must drain before the kubelet kills it"


def test_dockerignore_is_described_as_it_is() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv/", "models/"} <= set(ignored)
    assert not re.search(r"\badd a `\.dockerignore`", README), "deploy/README.md asks for a .dockerignore that exists"


def test_trainer_job_runs_the_kustomized_image() -> None:
    """The Job is applied on its own (kubectl apply -f), so kustomization.yaml's images: do not reach it: its own
    image must be the one the kustomization gives the workers, and the README must say so."""
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "trainer-job.yaml" not in kustomization["resources"]
    image = next(i for i in kustomization["images"] if i["name"] == "livetopic")
    job = _one("trainer-job.yaml", "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"{image['newName']}:{image['newTag']}"
    assert re.search(r"Not in the kustomization: its `image:` is set in the file", README)
