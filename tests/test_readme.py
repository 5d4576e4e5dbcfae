"""The README as a new user meets it, on a fresh copy of the repository with no ``../shared`` beside it.

Every fenced block of README.md is ```` ```bash ```` (commands) or ```` ```text ```` (anything else), so that no
command can hide from this test under another tag. A ``bash`` block whose first line is ``# needs: <what>``
(network, TVL data…) is not run here: the README says right there what it needs. Every other ``bash`` block of
README.md, then of the docs/ pages, runs as written, in order, in one ``bash -euo pipefail`` script in a copy of
the repository's files: ``livetopic`` is this environment's, importing the copy. Commands left running in the
background (``livetopic worker &``) are stopped at the end as `kill %1` would; one that ended by itself must have
ended with status 0.

Where the system allows it, the script runs in namespaces of its own (``unshare``): its own network with only a
loopback (so nothing reaches the network and the README's default ports, 9400 and 9500, are free whatever else
runs on this machine) and its own process tree (whatever it started ends with it). Links from README.md and the
docs/ pages to repository files must point at files that exist (and at headings that exist, for ``#anchors``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from worker.tools.embedded import RECORD_NAME

from .conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINKED_PAGES = [*PAGES, ROOT / "deploy" / "README.md"]
NEEDS = re.compile(r"^#\s*needs:\s*(?P<what>.*)$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>.*)$")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
RUN_TIMEOUT_S = 360


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def needs(self) -> str | None:
        first = self.code.lstrip("\n").splitlines()[0] if self.code.strip() else ""
        found = NEEDS.match(first.strip())
        return found["what"].strip() if found else None


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    open_at, info = 0, ""
    lines: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if open_at and fence and not fence["info"].strip():
            found.append(Block(path, open_at, info, "\n".join(lines) + "\n"))
            open_at, lines = 0, []
        elif open_at:
            lines.append(line)
        elif fence:
            open_at, info = number, fence["info"].strip()
    assert not open_at, f"{path.name}:{open_at}: a code block is never closed"
    return found


def runnable(paths: list[Path]) -> list[Block]:
    return [b for p in paths for b in blocks(p) if b.info == "bash" and b.needs is None]


def test_every_block_of_the_readme_is_bash_or_text() -> None:
    found = blocks(README)
    assert found, "README.md has no code blocks"
    others = [f"{b.where} ```{b.info}" for b in found if b.info not in ("bash", "text")]
    assert others == [], "README.md: commands go in ```bash blocks (run by this test), anything else in ```text"


def test_blocks_that_do_not_run_here_say_what_they_need() -> None:
    skipped = [b for p in PAGES for b in blocks(p) if b.info == "bash" and b.needs is not None]
    assert all(b.needs for b in skipped), [b.where for b in skipped if not b.needs]
    # the README's path from a chat file to the page is not behind a `needs:`
    readme = " ".join(b.code for b in runnable([README]))
    for command in ("livetopic train", "livetopic worker", "livetopic push", "livetopic tail", "livetopic dashboard"):
        assert command in readme, f"README.md: no runnable block does `{command}`"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_to_repository_files_exist(page: Path) -> None:
    broken = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        for match in LINK.finditer(line):
            target = match["target"]
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            path = (page.parent / file_part).resolve() if file_part else page
            if not path.exists() or not path.is_relative_to(ROOT):
                broken.append(f"line {number}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"line {number}: {target} (no such heading)")
    assert broken == []


def copy_of_the_repository(dest: Path) -> Path:
    """The files a clone would have: tracked ones and new ones git does not ignore, as they are on disk."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


# Background commands are remembered as they start (a DEBUG trap sees $! after each one); at the end each one
# still running is stopped as `kill %1` would, and each one that ended by itself must have ended with status 0.
PRELUDE = """set -euo pipefail
__bg=""
trap '__bg="$__bg ${!:-}"' DEBUG
trap 'echo "README check: $WHERE failed (exit $?): $BASH_COMMAND" >&2' ERR
"""
POSTLUDE = """trap - DEBUG ERR
status=0
for pid in $(printf '%s\\n' $__bg | sort -u); do
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; wait "$pid" && code=0 || code=$?
    case $code in 0|130|143) ;; *) echo "README check: a background command stopped with $code" >&2; status=1;; esac
  else
    wait "$pid" && code=0 || code=$?
    [ "$code" = 0 ] || { echo "README check: a background command ended by itself with $code" >&2; status=1; }
  fi
done
exit $status
"""


def script(chosen: list[Block]) -> str:
    parts = [PRELUDE]
    for block in chosen:
        parts.append(f"WHERE={block.where}; echo '+++ {block.where}' >&2\n{block.code}")
    parts.append(POSTLUDE)
    return "\n".join(parts)


@cache
def isolation() -> list[str]:
    """unshare into a user, network and PID namespace of its own (loopback up), or nothing where not allowed."""
    command = ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run([*command, "ip", "link", "set", "lo", "up"], capture_output=True, check=False)
    return command if probe.returncode == 0 else []


def run_script(text: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (cwd.parent / "readme.sh").write_text(text, encoding="utf-8")
    wrapped = ["bash", "-c", 'ip link set lo up && exec bash "$0"'] if isolation() else ["bash"]
    argv = [*isolation(), *wrapped, str(cwd.parent / "readme.sh")]
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += f"\nREADME check: timed out after {RUN_TIMEOUT_S} s"
    finally:
        stop_leftovers(proc.pid, cwd)
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def stop_leftovers(pgid: int, cwd: Path) -> None:
    """Without a PID namespace: the script's process group, and an embedded Redis it left (its own session)."""
    if isolation():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    record = cwd / ".livetopic-redis" / RECORD_NAME
    if record.exists():
        pid = int(json.loads(record.read_text(encoding="utf-8"))["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_the_readme_and_docs_commands_run_on_a_fresh_copy(tmp_path: Path) -> None:
    repo = copy_of_the_repository(tmp_path / "livetopic")
    assert not (repo.parent / "shared").exists()
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVETOPIC_", "PYTEST_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(repo),
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    chosen = runnable(PAGES)
    proc = run_script(script(chosen), repo, env)
    assert proc.returncode == 0, proc.stdout[-6000:]
    started = re.findall(r"^\+\+\+ (\S+)$", proc.stdout, flags=re.M)
    assert started == [b.where for b in chosen], proc.stdout[-6000:]


@pytest.mark.parametrize(
    ("code", "status", "said"),
    [
        ("true\nfalse\ntrue\n", 1, "README.md:1 failed (exit 1): false"),
        ("sh -c 'exit 3' &\nwhile kill -0 $! 2>/dev/null; do sleep 0.05; done\n", 1, "ended by itself with 3"),
        ("sleep 60 &\n", 0, ""),  # still serving at the end: stopped, as the README's `kill %1` would
    ],
    ids=["a failing command", "a failed background command", "a background command still running"],
)
def test_the_check_fails_on_what_fails(tmp_path: Path, code: str, status: int, said: str) -> None:
    (tmp_path / "repo").mkdir()
    proc = run_script(script([Block(README, 1, "bash", code)]), tmp_path / "repo", dict(os.environ))
    assert proc.returncode == status, proc.stdout
    assert said in proc.stdout
