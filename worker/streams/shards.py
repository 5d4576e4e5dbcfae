"""Shards: the input, output and dead-letter streams split N ways, every key of shard ``k`` in one cluster slot.

Shard ``k``'s streams are the configured names with the hash tag ``{k}`` appended (``livetopic:comments:{3}``,
``livetopic:topics:{3}``, ``livetopic:dead:{3}``); their companion keys (``<stream>:<suffix>``: resume mark,
done set, checkpoints, seen ids; :mod:`.keys`) carry the same tag, so each script (publish, reclaim, ensure,
produce) touches one slot, as Redis Cluster requires. With one shard on a plain Redis (the default) nothing is
tagged: the names stay ``livetopic:comments`` etc., compatible with every stream written before shards existed.
On a cluster (``--redis-cluster``) even one shard is tagged (``{0}``): untagged keys would fall in different
slots.

A comment goes to the shard of its channel (a stable hash: CRC-32 of the channel, modulo N), so a channel's
comments stay in order on one shard and its message ids meet the same de-duplication window. A comment with no
channel is placed by its message id, else its text: the same comment always lands on the same shard."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..settings import Settings, StreamNames

__all__ = ["ShardLayout"]


@dataclass(frozen=True, slots=True)
class ShardLayout:
    """``count`` shards of ``streams``; ``tagged``: key names carry the shard's hash tag (see the module)."""

    streams: StreamNames
    count: int = 1
    tagged: bool = False
    cluster: bool = False  # on a Redis Cluster (--redis-cluster)

    @classmethod
    def of(cls, settings: Settings) -> ShardLayout:
        return cls(
            settings.streams,
            settings.shards,
            tagged=settings.shards > 1 or settings.redis_cluster,
            cluster=settings.redis_cluster,
        )

    @staticmethod
    def served(settings: Settings) -> list[int]:
        """The shards a worker with ``settings`` serves (``--shard-set``; all by default)."""
        return sorted(settings.shard_set) if settings.shard_set else list(range(settings.shards))

    def name(self, stream: str, shard: int) -> str:
        """Shard ``shard``'s name of ``stream`` (or of a companion key named after the input stream)."""
        return f"{stream}:{{{shard}}}" if self.tagged else stream

    def names(self, shard: int) -> StreamNames:
        s = self.streams
        return StreamNames(
            self.name(s.input, shard), self.name(s.output, shard), self.name(s.dead_letter, shard), s.group
        )

    def all(self, stream: str) -> list[str]:
        """``stream``'s name in every shard (observers read them all)."""
        return [self.name(stream, k) for k in range(self.count)]

    def companion(self, key: str, shard: int) -> str:
        """A key named after the input stream (``<input>:<suffix>``: a checkpoint, the seen ids) in shard
        ``shard``'s slot: ``<input>:{k}:<suffix>``."""
        base = self.streams.input
        if not self.tagged:
            return key
        if not key.startswith(base + ":"):
            raise ValueError(f"{key} is not named after the input stream {base}")
        return self.name(base, shard) + key[len(base) :]

    def shard_of(self, fields: Mapping[str, str]) -> int:
        """The shard of an input entry: by channel, else message id, else text (stable across processes)."""
        if self.count == 1:
            return 0
        key = fields.get("channel") or fields.get("id") or fields.get("text") or ""
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % self.count

    def split(self, entries: Sequence[Mapping[str, str]]) -> dict[int, list[int]]:
        """The positions of ``entries`` per shard, in their order (every shard present, maybe empty)."""
        parts: dict[int, list[int]] = {k: [] for k in range(self.count)}
        for i, fields in enumerate(entries):
            parts[self.shard_of(fields)].append(i)
        return parts
