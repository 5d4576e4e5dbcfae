"""Redis's memory against ``maxmemory`` while faults run: its data and its clients' buffers, sampled together
and bounded apart (see docs/RECOVERY.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

__all__ = ["CLIENT_BUFFERS_TOLERANCE_B", "DATA_OVER_TOLERANCE_B", "MemoryPeaks", "read_memory"]

# Memory as Redis counts it against maxmemory (used_memory less mem_not_counted_for_evict: the AOF buffer and the
# replicas' output buffers) holds data and its clients' buffers. Data (streams, groups, what the scripts write) may
# pass the limit by at most one script call's writes between two of Redis's own checks: a publish is cut into calls
# of at most 64K characters of fields, about 192 KB of UTF-8.
DATA_OVER_TOLERANCE_B = 256 * 1024
# Clients' buffers (a reply waiting for its reader, a call being read) are transient and grow with what is in
# flight: per worker, a publish call (at most 64K characters of fields, about 192 KB, which Redis may buffer at up
# to twice its size while reading it) and a read reply. Two workers with short comments: seen up to 580 KB on a
# busy machine. A test that reads long entries adds its read reply's size.
CLIENT_BUFFERS_TOLERANCE_B = 1024 * 1024


@dataclass
class MemoryPeaks:
    """The most Redis's data and its clients' buffers grew past what ``maxmemory`` left them when it was set."""

    limit_b: int = 0
    clients_at_limit_b: int = 0
    data_over_b: int = 0
    clients_growth_b: int = 0

    def set_limit(self, limit_b: int, memory: dict[str, Any]) -> None:
        self.limit_b, self.clients_at_limit_b = limit_b, _clients_b(memory)

    def sample(self, memory: dict[str, Any]) -> None:
        if not self.limit_b:
            return
        counted = int(memory["used_memory"]) - int(memory.get("mem_not_counted_for_evict", 0))
        clients = _clients_b(memory)
        self.data_over_b = max(self.data_over_b, counted - clients - (self.limit_b - self.clients_at_limit_b))
        self.clients_growth_b = max(self.clients_growth_b, clients - self.clients_at_limit_b)

    def problems(self, clients_tolerance_b: int = CLIENT_BUFFERS_TOLERANCE_B) -> list[str]:
        out = []
        if self.data_over_b > DATA_OVER_TOLERANCE_B:
            out.append(f"data went {self.data_over_b} bytes over maxmemory (> {DATA_OVER_TOLERANCE_B})")
        if self.clients_growth_b > clients_tolerance_b:
            out.append(f"clients' buffers grew {self.clients_growth_b} bytes past maxmemory (> {clients_tolerance_b})")
        return out


def read_memory(client: redis.Redis) -> dict[str, Any]:
    """INFO memory, with ``clients_live_b``: the normal clients' memory summed from CLIENT LIST, sent in the same
    write (Redis runs them back to back; not in MULTI, which Redis refuses while over maxmemory). Redis 7 keeps
    ``mem_clients_normal`` as a running figure that may lag a large reply still waiting for its reader (seen: a
    1.5 MB read reply counted as data for a moment); CLIENT LIST measures it."""
    pipe = client.pipeline(transaction=False)
    pipe.info("memory")
    pipe.client_list(_type="normal")
    memory, clients = pipe.execute()
    return {**memory, "clients_live_b": sum(int(c.get("tot-mem", 0)) for c in clients)}


def _clients_b(memory: dict[str, Any]) -> int:
    return max(int(memory.get("mem_clients_normal", 0)), int(memory.get("clients_live_b", 0)))
