"""Output entries as hostile as they come, for the dashboard's bounds: 60 channels whose names are 60 KB, long
user names, texts, label names and model tags, mostly control characters (each takes six bytes in JSON), spread
over four hours so that every window's series is full. Written straight into a real Redis (an output stream
may hold anything: an older worker, another producer)."""

from __future__ import annotations

import json
from typing import Any

INPUT, OUTPUT = "livetopic:comments", "livetopic:topics"
CHANNELS = 60
CHANNEL_CHARS = 60_000
LABELS = [f"label{i:03d}" + "\x05" * 100 for i in range(100)]


def channel_name(c: int) -> str:
    return f"{c:03d}" + "\x01" * (CHANNEL_CHARS - 3)


def output_fields(source_id: str, c: int, i: int) -> dict[str, str]:
    return {
        "source_id": source_id,
        "channel": channel_name(c),
        "user": f"u{i}" + "\x02" * 2_000,
        "ts": "\x03" * 1_000,
        "text": "\x04" * 5_000,
        "labels": json.dumps(LABELS),
        "scores": json.dumps(dict.fromkeys(LABELS, 0.9)),
        "model": f"m{i % 30}:" + "\x06" * 1_000,
        "latency_ms": "5",
    }


async def fill(client: Any, now_ms: int, *, per_channel: int = 2, span_ms: int = 4 * 3_600_000) -> list[str]:
    """``CHANNELS × per_channel`` comments (input entries with their results), their ids spread evenly over the
    ``span_ms`` before ``now_ms``; their input ids."""
    n = CHANNELS * per_channel
    ids = []
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        source_id = f"{now_ms - span_ms + i * span_ms // n}-0"
        pipe.xadd(INPUT, {"text": "x"}, id=source_id)
        pipe.xadd(OUTPUT, output_fields(source_id, i % CHANNELS, i))
        ids.append(source_id)
    await pipe.execute()
    return ids
