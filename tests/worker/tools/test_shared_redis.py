"""SharedRedis, the one embedded redis-server of a data directory: a command that found the server counts as
its user from then on, before it opens a client of its own (a worker that found it and is still loading its
model), so another command leaving does not stop the server under it. (The README's `livetopic worker &`
then `livetopic push` met exactly that: push started the server, pushed, saw no client and stopped it while the
worker loaded its model; the worker then retried a dead port for ever.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from worker.tools.embedded import RECORD_NAME, SharedRedis, _ask

STARTER = """
import sys
from worker.tools.embedded import SharedRedis
server = SharedRedis(sys.argv[1]).start()
print(server.port, flush=True)
sys.stdin.readline()  # until told to leave
server.stop()
"""


def _answers(port: int) -> bool:
    return _ask(port, b"PING").startswith(b"+PONG")


def test_a_user_that_has_not_connected_yet_keeps_the_server_up(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", STARTER, str(tmp_path)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as starter:
        assert starter.stdout is not None and starter.stdin is not None
        port = int(starter.stdout.readline())
        late = SharedRedis(tmp_path).start()  # found it; no client of its own yet
        try:
            assert not late.started and late.port == port
            starter.stdin.write("\n")
            starter.stdin.flush()
            assert starter.wait(timeout=30) == 0  # the starter left (push done)
            assert _answers(port), "the server was stopped under a command that uses it"
            late.stop()  # the last one out stops it
            assert not _answers(port)
            assert not (tmp_path / RECORD_NAME).exists()
        finally:
            if starter.poll() is None:
                starter.kill()
            if _answers(port):
                _ask(port, b"SHUTDOWN NOSAVE")
