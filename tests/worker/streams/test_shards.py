"""Shard names and routing, the settings that choose them, and the sharded producer's checkpoint copies after a
crash between two shards' parts (a real redis-server)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from worker.errors import ConfigError
from worker.settings import Settings, StreamNames, load_settings
from worker.streams.keys import push_key
from worker.streams.producer import Checkpoint
from worker.streams.sharded import ShardedProducer
from worker.streams.shards import ShardLayout

NAMES = StreamNames("livetopic:comments", "livetopic:topics", "livetopic:dead", "livetopic")


def test_one_shard_on_a_plain_redis_keeps_the_names() -> None:
    layout = ShardLayout.of(Settings())
    assert layout.names(0) == NAMES
    assert layout.companion("livetopic:comments:seen", 0) == "livetopic:comments:seen"


def test_shard_names_share_one_hash_tag_per_shard() -> None:
    layout = ShardLayout.of(Settings(shards=4))
    assert layout.names(3) == StreamNames(
        "livetopic:comments:{3}", "livetopic:topics:{3}", "livetopic:dead:{3}", "livetopic"
    )
    assert layout.companion("livetopic:comments:push:ab", 3) == "livetopic:comments:{3}:push:ab"
    assert ShardLayout.of(Settings(redis_cluster=True)).names(0).input == "livetopic:comments:{0}"


def test_a_channel_stays_on_one_shard_and_channels_spread() -> None:
    layout = ShardLayout(NAMES, 4, tagged=True)
    rows = [{"channel": f"c{i % 8}", "text": str(i)} for i in range(400)]
    parts = layout.split(rows)
    for positions in parts.values():
        assert positions == sorted(positions)
    owner = {rows[i]["channel"]: k for k, positions in parts.items() for i in positions}
    assert all(layout.shard_of(row) == owner[row["channel"]] for row in rows)
    assert len(set(owner.values())) > 1


def test_shard_settings_are_checked() -> None:
    assert Settings(shards=4, shard_set="3,1").shard_set == (1, 3)
    assert ShardLayout.served(Settings(shards=3)) == [0, 1, 2]
    with pytest.raises(ConfigError, match="shard_set"):
        load_settings({"shards": 2, "shard_set": "2"})
    with pytest.raises(ConfigError, match="hash tag"):
        load_settings({"shards": 2, "input_stream": "{lt}:comments"})


async def test_a_push_stopped_between_shards_resumes_each_shard_once(redis_client: aioredis.Redis) -> None:
    layout = ShardLayout(NAMES, 4, tagged=True)
    chunks = [[{"channel": f"c{i % 8}", "text": f"{n}-{i}"} for i in range(40)] for n in range(3)]
    key = push_key(NAMES.input, "files")
    first = ShardedProducer(redis_client, layout)
    await first.add(chunks[0], Checkpoint(key, {"pushed": "40"}))
    # the second chunk reaches shards 0 and 1 only: the process dies there
    for k, positions in layout.split(chunks[1]).items():
        if k < 2:
            mark = Checkpoint(layout.companion(key, k), {"pushed": "80"})
            await first.producers[k].add([chunks[1][i] for i in positions], mark)
    again = ShardedProducer(redis_client, layout)
    assert await again.checkpoint(key) == {"pushed": "40"}  # the last shard's copy: the oldest
    for n, chunk in enumerate(chunks[1:], start=2):
        await again.add(chunk, Checkpoint(key, {"pushed": str(n * 40)}))
    texts = []
    for k in range(4):
        texts += [fields[b"text"].decode() for _, fields in await redis_client.xrange(layout.name(NAMES.input, k))]
    assert sorted(texts) == sorted(row["text"] for chunk in chunks for row in chunk)  # each once
    await again.clear(key)
    assert [await redis_client.exists(layout.companion(key, k)) for k in range(4)] == [0, 0, 0, 0]
