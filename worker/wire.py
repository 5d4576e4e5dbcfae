"""The wire format. Pure functions: parse an input entry into a :class:`Comment`, a :class:`Retract` (a
moderator's deletion or ban, ``kind=retract``) or a :class:`Rejection` (with a clear reason), render results,
retractions and dead letters into stream fields, and read stream entry ids (``<milliseconds>-<sequence>``)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_DEAD_LETTER_FIELDS",
    "MAX_PASSTHROUGH_CHARS",
    "PASSTHROUGH_FIELDS",
    "RETRACT_ACTIONS",
    "RETRACT_KIND",
    "SCORE_DECIMALS",
    "TRUNCATED_FIELD",
    "Comment",
    "Limits",
    "Rejection",
    "ResultRenderer",
    "Retract",
    "entry_age_s",
    "entry_time_ms",
    "is_retraction",
    "parse_entry",
    "parse_entry_id",
    "render_dead_letter",
    "render_result",
    "render_retraction",
    "rounded_scores",
    "trim_passthrough",
]

# The fields an input entry may carry beside its text that its result carries too (the one list: producers
# write these, the worker passes them through). Each is cut to ``max_passthrough_chars`` characters: a comment
# with a 60 KB channel is still a comment someone wants classified, so it is not dead-lettered; its result names
# the fields cut in TRUNCATED_FIELD ("channel,user"). Beside the channel, the author's name, the time and the
# message id, the scrapers fill (where the source has them; docs/INPUTS.md has the table per scraper): the
# author's stable id, the message type (a Super Chat is ``paid_message``), a paid message's amount and
# currency, the author's role badges ("moderator,member"), Twitch bits, and the source's own channel id.
PASSTHROUGH_FIELDS: tuple[str, ...] = (
    "channel",
    "user",
    "ts",
    "id",
    "author_id",
    "message_type",
    "amount",
    "currency",
    "badges",
    "bits",
    "channel_id",
)
MAX_PASSTHROUGH_CHARS = 256
TRUNCATED_FIELD = "truncated"
SCORE_DECIMALS = 4  # of each score in a result
# An entry with kind=retract (a deletion or a ban, pushed by the scrapers' readers) is not a comment: the worker
# publishes it as a retraction (docs/RESULTS.md, "Retractions"), unscored; its target is the message id (delete)
# or the author id (ban, timeout) whose comments the consumers subtract.
RETRACT_KIND = "retract"
RETRACT_ACTIONS: dict[str, str] = {"delete": "target_id", "ban": "target_author_id", "timeout": "target_author_id"}
# Redis scripts unpack at most ~8,000 values into one command: a dead letter keeps this many fields.
MAX_DEAD_LETTER_FIELDS = 256


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int = 2_000
    max_entry_bytes: int = 65_536
    max_passthrough_chars: int = MAX_PASSTHROUGH_CHARS


@dataclass(slots=True)
class Comment:
    """A valid input entry: its text, the passthrough fields (cut to their limit; the names of those cut in
    ``truncated``) and how often it was delivered."""

    entry_id: str
    text: str
    passthrough: dict[str, str]
    deliveries: int = 1
    truncated: tuple[str, ...] = ()  # the passthrough fields cut to max_passthrough_chars


@dataclass(frozen=True, slots=True)
class Retract:
    """A valid retraction entry: ``action`` (a key of :data:`RETRACT_ACTIONS`), ``target`` (the message id for
    ``delete``, the author id for ``ban``/``timeout``) and the fields its output entry carries beside them."""

    entry_id: str
    action: str
    target: str
    passthrough: dict[str, str]  # the passthrough fields and target_user, each cut to max_passthrough_chars
    deliveries: int = 1


@dataclass(frozen=True, slots=True)
class Rejection:
    """An entry that is not classified, why, and its fields for the dead letter."""

    entry_id: str
    error: str
    fields: dict[str, str]  # the original fields, decoded leniently for the dead letter
    deliveries: int = 1


def _lenient(value: bytes | str) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def parse_entry_id(entry_id: bytes | str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` → (ms, seq), which orders ids as Redis does; raises ValueError on anything else."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def entry_time_ms(entry_id: str) -> int:
    """The millisecond timestamp that a stream entry id starts with (0 if it has none)."""
    head = entry_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def entry_age_s(entry_id: str, now_s: float) -> float:
    """Seconds from the entry's push (its id's time, Redis's clock) to ``now_s`` (this host's); 0 where the
    clocks disagree so much that it would be negative."""
    return max(0.0, now_s - entry_time_ms(entry_id) / 1000)


def trim_passthrough(fields: Mapping[str, str], max_chars: int) -> tuple[dict[str, str], tuple[str, ...]]:
    """The passthrough fields of ``fields``, each cut to ``max_chars`` characters, and the names of those cut."""
    kept: dict[str, str] = {}
    cut: list[str] = []
    for key in PASSTHROUGH_FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        if len(value) > max_chars:
            value = value[:max_chars]
            cut.append(key)
        kept[key] = value
    return kept, tuple(cut)


def _decode_each(raw: Mapping[bytes, bytes] | Mapping[bytes | str, bytes | str]) -> dict[str, str] | str:
    """The fields as text, or why not (the first field that is not valid UTF-8)."""
    decoded: dict[str, str] = {}
    for key, value in raw.items():
        try:
            k = key.decode("utf-8") if isinstance(key, bytes) else str(key)
            v = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError as exc:
            return f"field {_lenient(key)!r} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        decoded[k] = v
    return decoded


def parse_entry(
    entry_id: str | bytes,
    raw: Mapping[bytes, bytes] | Mapping[bytes | str, bytes | str],
    limits: Limits,
    deliveries: int = 1,
    max_deliveries: int | None = None,
) -> Comment | Retract | Rejection:
    """Validate one input entry: a comment, or a retraction (``kind=retract``). Never raises: anything wrong
    becomes a :class:`Rejection`, and so does a valid entry delivered more than ``max_deliveries`` times (its
    consumers crashed or timed out on it)."""
    eid = _lenient(entry_id)

    def reject(reason: str, fields: dict[str, str] | None = None) -> Rejection:  # the original fields, leniently
        return Rejection(eid, reason, fields or {_lenient(k): _lenient(v) for k, v in raw.items()}, deliveries)

    if not raw:  # XADD needs a field: an entry read back without any was deleted while pending
        return reject("entry has no fields: it was deleted from the input stream before it was processed")
    size = sum(map(len, raw)) + sum(map(len, raw.values()))
    if size > limits.max_entry_bytes:
        # The dead letter keeps every field, each value cut to max_text_chars, so it stays bounded.
        cut = {
            k: v if len(v) <= limits.max_text_chars else v[: limits.max_text_chars] + "…[truncated]"
            for k, v in ((_lenient(k), _lenient(v)) for k, v in raw.items())
        }
        return reject(f"entry too large: {size} bytes > max_entry_bytes {limits.max_entry_bytes}", cut)
    try:  # bytes from Redis, valid UTF-8: the usual case, in one step
        decoded: dict[str, str] | str = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
    except (AttributeError, UnicodeDecodeError):
        decoded = _decode_each(raw)
    if isinstance(decoded, str):
        return reject(decoded)
    if decoded.get("kind") == RETRACT_KIND:  # a producer's retraction entry (docs/INPUTS.md): not a comment
        return _parse_retract(eid, decoded, limits, deliveries, max_deliveries)
    if "text" not in decoded:
        return reject("missing field 'text'")
    text = decoded["text"]
    if not text or text.isspace():
        return reject("empty or whitespace-only 'text'")
    if len(text) > limits.max_text_chars:
        return reject(f"text too long: {len(text)} chars > max_text_chars {limits.max_text_chars}")
    if "\x00" in text:
        return reject("text contains NUL characters")
    passthrough, truncated = trim_passthrough(decoded, limits.max_passthrough_chars)
    if max_deliveries is not None and deliveries > max_deliveries:
        kept = dict(passthrough, text=text, **({TRUNCATED_FIELD: ",".join(truncated)} if truncated else {}))
        return Rejection(
            eid,
            f"delivered {deliveries} times (max_deliveries {max_deliveries}); its consumers crashed or timed out",
            kept,
            deliveries,
        )
    return Comment(eid, text, passthrough, deliveries, truncated=truncated)


def _retract_problem(decoded: Mapping[str, str], limits: Limits) -> tuple[str, str] | str:
    """(action, target) of a retraction entry, or why it is not one that can be applied."""
    action = decoded.get("action") or next((a for a, k in RETRACT_ACTIONS.items() if decoded.get(k)), "")
    if not action:
        return "retraction without a target: it needs 'target_id' (delete) or 'target_author_id' (ban, timeout)"
    key = RETRACT_ACTIONS.get(action)
    if key is None:
        return f"retraction with an unknown action {action[:64]!r} (one of: {', '.join(RETRACT_ACTIONS)})"
    target = decoded.get(key, "")
    if not target or target.isspace():
        what = "the id of the comment removed" if key == "target_id" else "the author_id whose comments are removed"
        return f"retraction without a target: action {action} needs '{key}' ({what})"
    if len(target) > limits.max_passthrough_chars:
        return f"retraction target too long: {len(target)} chars > max_passthrough_chars {limits.max_passthrough_chars}"
    return action, target


def _parse_retract(
    eid: str, decoded: dict[str, str], limits: Limits, deliveries: int, max_deliveries: int | None
) -> Retract | Rejection:
    found = _retract_problem(decoded, limits)
    if isinstance(found, str):
        return Rejection(eid, found, decoded, deliveries)
    if max_deliveries is not None and deliveries > max_deliveries:
        reason = f"delivered {deliveries} times (max_deliveries {max_deliveries}); its consumers crashed or timed out"
        return Rejection(eid, reason, decoded, deliveries)
    kept, _cut = trim_passthrough(decoded, limits.max_passthrough_chars)
    if user := decoded.get("target_user"):
        kept["target_user"] = user[: limits.max_passthrough_chars]
    return Retract(eid, found[0], found[1], kept, deliveries)


def is_retraction(fields: Mapping[str, str]) -> bool:
    """An output entry (or an input entry) that is a retraction, not a comment's result."""
    return fields.get("kind") == RETRACT_KIND


def render_retraction(retract: Retract, now_ms: int) -> dict[str, str]:
    """Output-stream fields of an applied retraction: its own ``source_id``, ``kind=retract``, ``action``, the
    target (``target_id`` or ``target_author_id``), the passthrough fields it carried and ``latency_ms``."""
    fields = {"source_id": retract.entry_id, "kind": RETRACT_KIND, "action": retract.action}
    fields[RETRACT_ACTIONS[retract.action]] = retract.target
    fields.update(retract.passthrough)
    fields["latency_ms"] = str(max(0, now_ms - entry_time_ms(retract.entry_id)))
    return fields


class _Scores:
    """One label set's JSON, made without a JSON encoder call per comment: the scores object is a template over
    the label names (the numbers formatted as ``json.dumps`` formats them), each distinct label list's JSON made
    once."""

    def __init__(self, label_names: Sequence[str]) -> None:
        self.label_names = list(label_names)
        keys = [json.dumps(name, ensure_ascii=False).replace("%", "%%") for name in self.label_names]
        self._scores = "{" + ",".join(f"{key}:%r" for key in keys) + "}"
        self._label_sets: dict[tuple[str, ...], str] = {}

    def labels(self, labels: Sequence[str]) -> str:
        key = tuple(labels)
        label_json = self._label_sets.get(key)
        if label_json is None:
            label_json = self._label_sets[key] = json.dumps(list(key), ensure_ascii=False)
        return label_json

    def scores(self, scores: Sequence[float]) -> str:
        if len(scores) != len(self.label_names):
            raise ValueError(f"{len(scores)} scores for {len(self.label_names)} labels")
        return self._scores % tuple(scores)


class ResultRenderer:
    """Output-stream fields for the classified comments of one model (:class:`_Scores`: no JSON encoder call per
    comment). ``text``: include the comment's text. ``stages``: the further stages of a pipeline (name, label
    names): a comment a stage ran on gets ``<name>_labels`` and ``<name>_scores``."""

    def __init__(
        self,
        label_names: Sequence[str],
        model_tag: str,
        *,
        text: bool = True,
        stages: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> None:
        self.label_names, self.model_tag, self.text = list(label_names), model_tag, text
        self._first = _Scores(label_names)
        self._stages = {name: _Scores(names) for name, names in stages}

    def render(self, comment: Comment, labels: Sequence[str], probs: Sequence[float], now_ms: int) -> dict[str, str]:
        """The result of ``comment`` scored ``probs`` (one per label name)."""
        return self.render_rounded(comment, labels, rounded_scores(np.asarray([probs]))[0], now_ms)

    def render_rounded(
        self,
        comment: Comment,
        labels: Sequence[str],
        scores: Sequence[float],
        now_ms: int,
        staged: Mapping[str, tuple[Sequence[str], Sequence[float]]] | None = None,
    ) -> dict[str, str]:
        """As :meth:`render`, with ``scores`` rounded already (:func:`rounded_scores`: once for a whole batch);
        ``staged``: stage name → (labels, rounded scores) of the further stages that ran on the comment."""
        scores_json = self._first.scores(scores)
        fields = {"source_id": comment.entry_id, **comment.passthrough}
        if comment.truncated:
            fields[TRUNCATED_FIELD] = ",".join(comment.truncated)
        if self.text:
            fields["text"] = comment.text
        fields["labels"] = self._first.labels(labels)
        fields["scores"] = scores_json
        for name, (stage_labels, stage_scores) in (staged or {}).items():
            layer = self._stages[name]
            fields[f"{name}_labels"] = layer.labels(stage_labels)
            fields[f"{name}_scores"] = layer.scores(stage_scores)
        fields["model"] = self.model_tag
        fields["latency_ms"] = str(max(0, now_ms - entry_time_ms(comment.entry_id)))
        return fields


def rounded_scores(probs: np.ndarray) -> list[list[float]]:
    """The rows of ``probs`` (comments × labels) as results carry them: floats to :data:`SCORE_DECIMALS`
    decimals, rounded for all rows at once."""
    return np.round(np.asarray(probs, dtype=np.float64), SCORE_DECIMALS).tolist()


def render_result(
    comment: Comment,
    labels: Sequence[str],
    label_names: Sequence[str],
    probs: Sequence[float],
    model_tag: str,
    now_ms: int | None = None,
    *,
    text: bool = True,
) -> dict[str, str]:
    """Output-stream fields for one classified comment (its ``text`` too, unless ``text`` is False;
    :class:`ResultRenderer` renders many)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return ResultRenderer(label_names, model_tag, text=text).render(comment, labels, probs, now)


def render_dead_letter(entry_id: str, error: str, deliveries: int, original: Mapping[str, str]) -> dict[str, str]:
    """Dead-letter fields: the original fields (prefixed ``orig_`` where they clash) plus the reason.

    At most :data:`MAX_DEAD_LETTER_FIELDS` original fields are kept (``dropped_fields`` counts the rest):
    the publish script passes them to one XADD, and a script cannot unpack an unbounded number of values.
    """
    fields: dict[str, str] = {}
    for n, (key, value) in enumerate(original.items()):
        if n == MAX_DEAD_LETTER_FIELDS:
            fields["dropped_fields"] = str(len(original) - n)
            break
        name = key if key not in ("source_id", "error", "deliveries", "dropped_fields") else f"orig_{key}"
        fields[name] = value
    fields["source_id"] = entry_id
    fields["error"] = error
    fields["deliveries"] = str(deliveries)
    return fields
