"""The names of the keys livetopic keeps beside a stream. Each is in the stream's Redis Cluster slot (a script
may only touch one slot): it carries the stream's own hash tag where the name has one, else the stream's name
as its tag."""

from __future__ import annotations

import hashlib

__all__ = ["companion_key", "follow_key", "push_key", "resume_key", "seen_key"]


def companion_key(stream: str, suffix: str) -> str:
    start = stream.find("{")
    end = stream.find("}", start + 1)
    if start >= 0 and end > start + 1:
        return f"{stream}:{suffix}"
    return f"{{{stream}}}:{suffix}"


def _digest(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def follow_key(stream: str, identity: str) -> str:
    """The checkpoint hash of one followed file (``identity``: its absolute path) feeding ``stream``."""
    return companion_key(stream, "follow:" + _digest(identity))


def push_key(stream: str, identity: str) -> str:
    """The checkpoint hash of one ``push`` of files (``identity``: a digest of their contents) into ``stream``."""
    return companion_key(stream, "push:" + _digest(identity))


def seen_key(stream: str) -> str:
    """The sorted set of message ids pushed into ``stream`` within the de-duplication window."""
    return companion_key(stream, "seen")


def resume_key(stream: str, group: str) -> str:
    """Where to recreate consumer group ``group`` of ``stream`` if it is lost (see the publish script)."""
    return companion_key(stream, "resume:" + group)
