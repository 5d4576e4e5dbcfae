"""Retractions as the consumers of the output stream apply them (the dashboard, ``report --stream``): which
comments an output entry with ``kind=retract`` removes, whichever of the two arrives first. Pure, no I/O.

- ``delete``: the comment of the same ``channel`` whose ``id`` is the retraction's ``target_id``;
- ``ban``, ``timeout``: every comment of the same ``channel`` whose ``author_id`` is the retraction's
  ``target_author_id`` and whose input entry (``source_id``) is before the retraction's: what the author wrote
  after a timeout stands.

Several workers publish in parallel, so a retraction may reach the output stream before the result of the
comment it removes: the :class:`Ledger` remembers the retractions too, and a comment that arrives after its
retraction is not counted at all. A :class:`Ledger` with a ``cap`` remembers at most that many comments (with an
``id`` or ``author_id``) and that many retractions of each kind, the oldest forgotten first: a retraction of a
comment forgotten already removes nothing. Keys are hashes of (channel, id), so a hostile stream's long strings
are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..wire import RETRACT_ACTIONS, is_retraction, parse_entry_id

__all__ = ["Ledger", "Order", "Retraction", "is_retraction", "order_of", "retraction_of"]

H = TypeVar("H")
V = TypeVar("V")
Order = tuple[int, int]  # an input entry id as (ms, seq): the order of the chat


@dataclass(frozen=True, slots=True)
class Retraction:
    order: Order  # its own input entry id (source_id)
    action: str  # delete, ban, timeout
    channel: str
    target: str  # the message id (delete) or the author id (ban, timeout)


def order_of(source_id: str) -> Order | None:
    """``source_id`` as an :data:`Order`, or None when it is not an entry id."""
    try:
        return parse_entry_id(source_id)
    except ValueError:
        return None


def retraction_of(fields: Mapping[str, str], channel: str) -> Retraction | None:
    """The retraction that an output entry with ``kind=retract`` is (``channel``: its channel as the consumer keys
    channels), or None when it is malformed (no known action, no target, no ``source_id``)."""
    action = fields.get("action", "")
    key = RETRACT_ACTIONS.get(action)
    target = fields.get(key, "") if key else ""
    order = order_of(fields.get("source_id", ""))
    if not target or order is None:
        return None
    return Retraction(order, action, channel, target)


class Ledger(Generic[H]):
    """The comments a consumer may still have to remove (each with its ``handle``: what the consumer needs to
    subtract it) and the retractions seen, matched whichever comes first."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self._comments: dict[Order, tuple[int | None, int | None, H]] = {}  # in arrival order
        self._by_id: dict[int, Order] = {}
        self._by_author: dict[int, list[Order]] = {}
        self._deleted: dict[int, None] = {}  # deletions of comments not seen (yet)
        self._banned: dict[int, Order] = {}  # author → the latest ban or timeout

    def __len__(self) -> int:
        return len(self._comments)

    def comment(self, order: Order, channel: str, message_id: str, author_id: str, handle: H) -> bool:
        """Remember a comment (when it has an ``id`` or ``author_id``); False when a retraction seen before
        removes it already (then it is not remembered: do not count it)."""
        id_key = hash((channel, message_id)) if message_id else None
        author_key = hash((channel, author_id)) if author_id else None
        if id_key is not None and id_key in self._deleted:
            del self._deleted[id_key]
            return False
        banned = self._banned.get(author_key) if author_key is not None else None
        if banned is not None and order < banned:
            return False
        if id_key is None and author_key is None:
            return True
        self._forget(order)
        self._comments[order] = (id_key, author_key, handle)
        if id_key is not None:
            self._by_id[id_key] = order
        if author_key is not None:
            self._by_author.setdefault(author_key, []).append(order)
        if self.cap is not None and len(self._comments) > self.cap:
            self._forget(next(iter(self._comments)))
        return True

    def retract(self, retraction: Retraction) -> list[H]:
        """The handles of the comments ``retraction`` removes (forgotten now); the retraction is remembered for
        the comments that arrive after it."""
        key = hash((retraction.channel, retraction.target))
        if retraction.action == "delete":
            order = self._by_id.get(key)
            if order is None:
                self._remember(self._deleted, key, None)
                return []
            orders = [order]
        else:
            orders = [o for o in self._by_author.get(key, ()) if o < retraction.order]
            self._remember(self._banned, key, max(retraction.order, self._banned.get(key, retraction.order)))
        return [handle for handle in map(self._forget, orders) if handle is not None]

    def _remember(self, table: dict[int, V], key: int, value: V) -> None:
        """``table[key] = value``, as the newest entry (the oldest dropped past the cap)."""
        table.pop(key, None)
        table[key] = value
        if self.cap is not None and len(table) > self.cap:
            del table[next(iter(table))]

    def _forget(self, order: Order) -> H | None:
        entry = self._comments.pop(order, None)
        if entry is None:
            return None
        id_key, author_key, handle = entry
        if id_key is not None and self._by_id.get(id_key) == order:
            del self._by_id[id_key]
        if author_key is not None:
            orders = self._by_author[author_key]
            orders.remove(order)
            if not orders:
                del self._by_author[author_key]
        return handle
