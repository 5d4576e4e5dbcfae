"""Install the CPU build of torch (requirements/cpu.txt) without ever pulling CUDA wheels.

1. The PyTorch CPU wheel index (``--index``, default https://download.pytorch.org/whl/cpu) is added to pip's
   indexes when it answers within a few seconds; its ``torch==X+cpu`` sorts above PyPI's CUDA build ``X``.
   Where it does not answer (an offline machine with a local mirror or wheel directory), pip's configured indexes
   and find-links are used alone, and this is said.
2. pip resolves first (``--dry-run --report``); a plan with CUDA packages (``nvidia-*``, ``cuda-*``, ``triton``)
   is refused with a message instead of downloading gigabytes.
3. Then pip installs that plan.

Standard library only: it runs with the fresh virtual environment's python before anything is installed.
``--plan-only`` prints the plan a fresh environment would get (what is installed already is ignored) and stops.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REQUIREMENTS = Path(__file__).with_name("cpu.txt")
CUDA_PREFIXES = ("nvidia-", "cuda-")
CUDA_NAMES = frozenset({"triton"})


def reachable(index: str, timeout_s: float = 5.0) -> bool:
    """Whether ``index`` answers for torch (a local ``file://`` index counts when the directory exists)."""
    url = index.rstrip("/") + "/torch/"
    if url.startswith("file:"):
        return Path(url2pathname(urlsplit(url).path)).is_dir()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            return bool(reply.status < 400)
    except (OSError, ValueError):
        return False


def cuda_packages(report: dict[str, Any]) -> list[str]:
    """``name==version`` of every CUDA package in a ``pip install --report`` plan."""
    found = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name = re.sub(r"[-_.]+", "-", str(meta.get("name", ""))).lower()  # PEP 503 normalised
        if name.startswith(CUDA_PREFIXES) or name in CUDA_NAMES:
            found.append(f"{name}=={meta.get('version')}")
    return sorted(found)


def planned(report: dict[str, Any]) -> list[str]:
    return sorted(f"{item['metadata']['name']}=={item['metadata']['version']}" for item in report.get("install", []))


def pip(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], text=True, check=False,
                          stdout=subprocess.PIPE if capture else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default=CPU_INDEX, help=f"the CPU wheel index (default {CPU_INDEX})")
    parser.add_argument("--plan-only", action="store_true", help="print the resolver's plan and stop")
    args = parser.parse_args(argv)
    extra: list[str] = []
    if reachable(args.index):
        extra = ["--extra-index-url", args.index]
        print(f"cpu_torch: using the CPU wheel index {args.index}", file=sys.stderr)
    else:
        print(f"cpu_torch: the CPU wheel index {args.index} is unreachable; resolving torch from pip's configured "
              "indexes and find-links instead", file=sys.stderr)
    fresh = ["--ignore-installed"] if args.plan_only else []
    resolved = pip("install", "--dry-run", "--quiet", "--report", "-", *fresh, "-r", str(REQUIREMENTS), *extra,
                   capture=True)
    if resolved.returncode != 0:
        print("cpu_torch: pip could not resolve requirements/cpu.txt (see above)", file=sys.stderr)
        return resolved.returncode
    report = json.loads(resolved.stdout)
    cuda = cuda_packages(report)
    if cuda:
        print(f"cpu_torch: refusing: this plan pulls CUDA packages ({', '.join(cuda)}), so the torch it found is a "
              f"CUDA build. Make the CPU wheel index reachable (or a mirror of it: make install TORCH_INDEX=URL), "
              "or follow the GPU install of docs/INSTALL.md.", file=sys.stderr)
        return 1
    plan = planned(report)
    print(f"cpu_torch: plan: {', '.join(plan) if plan else 'nothing to install (already there)'}", file=sys.stderr)
    if args.plan_only or not plan:
        return 0
    return pip("install", "--quiet", "-r", str(REQUIREMENTS), *extra).returncode


if __name__ == "__main__":
    raise SystemExit(main())
