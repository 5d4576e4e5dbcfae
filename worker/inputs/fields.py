"""The optional fields every scraper's converter fills alike, beside ``text``/``user``/``id``/``ts``: the
author's id, the message type, money (``amount``, ``currency``), role ``badges``, and the moderation entries
(:class:`~.records.Retraction`). One vocabulary for all sources (docs/INPUTS.md has the table per scraper):

- ``message_type``: chat-downloader's names, which cover both sites: ``text_message``, ``paid_message`` (a
  Super Chat), ``membership_item`` (a membership milestone with the viewer's message), ``highlighted_message``,
  ``subscription``, ``resubscription``, ``announcement``…
- ``badges``: the author's roles, comma-separated, in the order of :data:`ROLES`.
- ``amount``: a decimal number as text (``75``, ``4.99``); ``currency``: an ISO 4217 code where the source
  gives one or the symbol names one, else the symbol as shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .records import Record, Retraction, iso_utc, number

__all__ = [
    "ROLES",
    "amount_text",
    "badges_text",
    "currency_code",
    "money_of",
    "put",
    "record",
    "retract_author",
    "retract_message",
]

# Roles kept as badges (lower case), in this order; everything else (cosmetic badges, bits tiers…) is dropped.
ROLES = ("owner", "broadcaster", "moderator", "vip", "member", "subscriber", "founder", "verified", "staff")
# The currency symbols YouTube shows before an amount, as ISO 4217 codes (others are shown as their code).
CURRENCY_SYMBOLS = {
    "$": "USD",
    "A$": "AUD",
    "CA$": "CAD",
    "HK$": "HKD",
    "MX$": "MXN",
    "NT$": "TWD",
    "NZ$": "NZD",
    "R$": "BRL",
    "£": "GBP",
    "€": "EUR",
    "₹": "INR",
    "₪": "ILS",
    "₱": "PHP",
    "₩": "KRW",
    "￦": "KRW",
    "¥": "JPY",
    "￥": "JPY",
}
_AMOUNT = re.compile(r"^\s*(?P<symbol>[^\d\s.,]*)\s*(?P<amount>\d[\d,]*(?:\.\d+)?)\s*(?P<after>[A-Z]{3})?\s*$")


def put(fields: dict[str, str], key: str, value: Any) -> None:
    """Set ``fields[key]`` to ``value`` as text, unless it is None or empty."""
    if value is None or isinstance(value, dict | list):
        return
    text = value if isinstance(value, str) else amount_text(value) if isinstance(value, float) else str(value)
    if text != "":
        fields[key] = text


def amount_text(value: float | int) -> str:
    """75.0 → '75', 4.99 → '4.99', 1234.5 → '1234.5'."""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def currency_code(value: Any) -> str | None:
    """An ISO 4217 code for a currency the source names by its symbol ('NT$' → 'TWD'); codes as they are."""
    if not isinstance(value, str) or not value:
        return None
    return CURRENCY_SYMBOLS.get(value.strip(), value.strip())


def money_of(text: Any) -> tuple[str, str] | None:
    """'NT$75.00' → ('75', 'TWD'); '1,000 JPY' → ('1000', 'JPY'); None when it is not an amount."""
    if not isinstance(text, str):
        return None
    found = _AMOUNT.match(text)
    if found is None:
        return None
    amount = float(found["amount"].replace(",", ""))
    symbol = found["symbol"] or found["after"] or ""
    return amount_text(amount), CURRENCY_SYMBOLS.get(symbol, symbol)


def badges_text(roles: Iterable[str]) -> str:
    """The roles among ``roles`` (any case; 'member (6 months)' counts as 'member'), comma-separated, in the
    order of :data:`ROLES`, each once."""
    found = set()
    for role in roles:
        name = role.strip().lower().replace(" ", "_")
        if name.startswith(("member", "new_member")):
            name = "member"
        found.add({"global_mod": "staff", "admin": "staff", "partner": "verified"}.get(name, name))
    return ",".join(role for role in ROLES if role in found)


def _stamp(fields: dict[str, str], usec: float | None) -> float | None:
    if usec is None:
        return None
    fields["ts"] = iso_utc(usec / 1e6)
    return usec / 1e6


def retract_message(
    target_id: str, *, usec: float | None = None, offset_s: float | None = None, user: Any = None
) -> Retraction:
    """A deleted message (by its id)."""
    fields = {"kind": "retract", "action": "delete", "target_id": target_id, "id": f"delete:{target_id}"}
    put(fields, "target_user", user)
    return Retraction(fields, offset_s, _stamp(fields, usec))


def retract_author(
    author_id: str, *, action: str = "ban", usec: float | None = None, offset_s: float | None = None, user: Any = None
) -> Retraction:
    """A ban or timeout: every earlier comment of ``author_id``. Its own id names the author and, where the
    source gives one, the time (a second ban of the same author later is another entry)."""
    when = f":{int(usec)}" if usec is not None else f":o{int(offset_s * 1000)}" if offset_s is not None else ""
    fields = {"kind": "retract", "action": action, "target_author_id": author_id, "id": f"{action}:{author_id}{when}"}
    put(fields, "target_user", user)
    return Retraction(fields, offset_s, _stamp(fields, usec))


def record(fields: dict[str, str], *, usec: Any = None, offset_s: float | None = None) -> Record:
    """A comment with ``ts`` (and its send time, for ``--speed``) from ``usec``, microseconds since the epoch."""
    return Record(fields, offset_s, _stamp(fields, number(usec)))
