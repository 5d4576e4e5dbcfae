"""deploy/docker-compose.yml parsed: by ``docker compose config`` where Compose v2 is installed, else against
the Compose Specification's JSON schema (schemas/compose-spec.json); and in both cases what the worker
needs of it (its ``LIVETOPIC_*`` variables are settings it knows, declared volumes and services exist)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from worker.settings import ENV_PREFIX, Settings

__all__ = ["check_compose", "known_env", "load_compose"]


def known_env() -> set[str]:
    """Every ``LIVETOPIC_*`` variable the settings class accepts (an unknown one stops the worker)."""
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def load_compose(path: Path) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(path.read_text())  # merge keys (<<) resolved
    return data


def _docker_compose_config(path: Path) -> list[str] | None:
    """Problems reported by ``docker compose config -q``; None where Compose v2 is not installed."""
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return None
    proc = subprocess.run(
        ["docker", "compose", "-f", str(path), "config", "-q"], capture_output=True, text=True, check=False, timeout=60
    )
    return [] if proc.returncode == 0 else [f"docker compose config: {proc.stderr.strip()}"]


def _schema_problems(data: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads(resources.files(__package__).joinpath("schemas/compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"compose: {'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in validator.iter_errors(data)
    ]


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    services = data.get("services", {})
    volumes = set(data.get("volumes") or {})
    known = known_env()
    for name, service in services.items():
        env = service.get("environment") or {}
        keys = env if isinstance(env, dict) else [item.split("=", 1)[0] for item in env]
        problems += [
            f"compose: service {name}: {key} is not a livetopic setting (the worker would refuse to start)"
            for key in keys
            if key.startswith(ENV_PREFIX) and key not in known
        ]
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "$", "~")) and source not in volumes:
                problems.append(f"compose: service {name} mounts volume {source!r}, which is not declared")
        problems += [
            f"compose: service {name} depends on {dep!r}, which is not a service"
            for dep in service.get("depends_on", [])
            if dep not in services
        ]
    return problems


def check_compose(deploy_dir: Path) -> tuple[list[str], list[str]]:
    """(what was checked, problems)."""
    path = deploy_dir / "docker-compose.yml"
    try:
        data = load_compose(path)
    except Exception as exc:  # a YAML error, reported as such
        return [], [f"compose: {path} does not parse: {exc}"]
    engine = _docker_compose_config(path)
    if engine is None:
        problems, how = _schema_problems(data), "the Compose Specification schema (no docker compose v2 here)"
    else:
        problems, how = engine, "docker compose config"
    problems += _semantic_problems(data)
    return [f"docker-compose.yml parsed; checked by {how}; LIVETOPIC_* variables, volumes, depends_on"], problems
