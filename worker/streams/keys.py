"""The names of the keys livetopic keeps beside a stream: the stream's name and a suffix. They match the same
ACL key patterns as the stream (``~livetopic:*``), and with a hash tag in the stream's name (``{livetopic}:comments``,
as Redis Cluster needs anyway: a script may only touch one slot) they are in the stream's slot."""

from __future__ import annotations

import hashlib

__all__ = ["companion_key", "done_key", "follow_key", "push_key", "resume_key", "seen_key"]


def companion_key(stream: str, suffix: str) -> str:
    return f"{stream}:{suffix}"


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
    """The resume mark of consumer group ``group`` of ``stream``: every entry up to it is finished (see
    :mod:`.scripts`); where the group is recreated if it is lost."""
    return companion_key(stream, "resume:" + group)


def done_key(stream: str, group: str) -> str:
    """The done set of consumer group ``group`` of ``stream``: the entries after the resume mark that are
    finished (see :mod:`.scripts`)."""
    return companion_key(stream, "done:" + group)
