"""The consumer group's place, with the resume mark as the one source of truth (see :mod:`.scripts`).

Every path that may create or accept a group goes through :func:`ensure_group`: a worker starting, a
producer starting (``push``, ``push --follow``, ``push -``, ``scrape``), and a worker that met ``NOGROUP``
in flight. A missing group is created at the mark; one found behind the mark, or past entries it lost from
its pending list, is moved to it. Only a stream that no worker ever served (no mark) starts at the start id
asked for (``0`` by default: nothing in the stream is skipped)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from .keys import done_key, resume_key
from .retry import guarded
from .scripts import ENSURE_LUA

__all__ = ["GroupState", "ensure_group"]


@dataclass(frozen=True, slots=True)
class GroupState:
    """What :func:`ensure_group` found and did."""

    stream: str
    group: str
    created: bool  # the group was missing and is created now
    mark: str  # the resume mark: every entry up to it is finished
    moved: str = ""  # "behind": moved up to the mark; "lost": moved back to the mark; "": left where it was
    skipped: int = 0  # entries never to be delivered (a group created at $ without a mark)
    recreated: bool = False  # created at a mark that was there: the group had been lost

    def warning(self) -> str | None:
        """What an operator must hear about, or None when nothing was repeated or skipped."""
        where = f"consumer group {self.group} of {self.stream}"
        if self.skipped:
            return (
                f"{where} created at $ (--group-start-id $): the {self.skipped} entries already in the stream "
                f"(up to {self.mark}) are skipped, never classified"
            )
        if self.moved == "behind":
            return (
                f"{where} stood behind its resume mark {self.mark} (recreated at an earlier id?): moved up to "
                f"it; entries up to {self.mark} are finished and are not published again"
            )
        if self.moved == "lost":
            return (
                f"{where} had delivered entries after its resume mark {self.mark} that are finished nowhere and "
                f"pending nowhere (the group recreated at $, a consumer deleted, or an XACK from outside): "
                f"moved back to {self.mark}; they are delivered again, and published once"
            )
        return None

    def describe(self) -> str:
        """One line for the log: created or found, and where it stands."""
        return f"group {'created' if self.created else 'exists'}, resume mark {self.mark}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str, start_id: str = "0") -> GroupState:
    """Create ``group`` of ``stream`` at its resume mark when missing (at ``start_id`` when there is no mark),
    or move it to the mark when it stands wrong (see the module's docstring)."""
    script = redis.register_script(ENSURE_LUA)
    reply = await guarded(
        "ensure group",
        script(keys=[stream, resume_key(stream, group), done_key(stream, group)], args=[group, start_id]),
    )
    created, mark, moved, skipped, had_mark = reply
    return GroupState(
        stream,
        group,
        bool(int(created)),
        _s(mark),
        _s(moved),
        int(skipped),
        recreated=bool(int(created)) and bool(int(had_mark)),
    )
