from __future__ import annotations

import json

import numpy as np
import pytest

from worker.wire import (
    Comment,
    Limits,
    Rejection,
    Retract,
    parse_entry,
    render_dead_letter,
    render_result,
    render_retraction,
)

LIMITS = Limits(max_text_chars=20, max_entry_bytes=200)


def test_valid_entry_keeps_passthrough_fields() -> None:
    raw = {b"text": "好球！".encode(), b"user": b"u1", b"channel": b"c", b"ts": b"1:02", b"id": b"x9", b"other": b"z"}
    parsed = parse_entry(b"1700000000000-3", raw, LIMITS)
    assert isinstance(parsed, Comment)
    assert parsed.entry_id == "1700000000000-3" and parsed.text == "好球！"
    assert parsed.passthrough == {"channel": "c", "user": "u1", "ts": "1:02", "id": "x9"}


def test_rejections_have_clear_reasons() -> None:
    cases = {
        "missing field 'text'": {b"user": b"u"},
        "empty or whitespace-only": {b"text": b"  \t\n"},
        "not valid UTF-8": {b"text": b"\xff\xfeabc"},
        "text too long": {b"text": ("字" * 21).encode()},
        "entry too large": {b"text": b"a", b"pad": b"x" * 300},
    }
    for reason, raw in cases.items():
        parsed = parse_entry("1-0", raw, LIMITS, deliveries=2)
        assert isinstance(parsed, Rejection), reason
        assert reason in parsed.error and parsed.deliveries == 2
        assert parsed.fields  # original fields kept for the dead letter


def test_render_result_fields() -> None:
    comment = Comment("1700000000000-0", "加油", {"user": "u"})
    fields = render_result(
        comment, ["Cheer"], ["Cheer", "Game"], np.array([0.91234, 0.1]).tolist(), "m:3", now_ms=1700000000250
    )
    assert fields["source_id"] == "1700000000000-0" and fields["user"] == "u"
    assert json.loads(fields["labels"]) == ["Cheer"]
    assert json.loads(fields["scores"]) == {"Cheer": 0.9123, "Game": 0.1}
    assert fields["model"] == "m:3" and fields["latency_ms"] == "250"
    assert fields["text"] == "加油"  # on by default
    private = render_result(
        comment, ["Cheer"], ["Cheer", "Game"], [0.91234, 0.1], "m:3", now_ms=1700000000250, text=False
    )
    assert "text" not in private and {k: v for k, v in fields.items() if k != "text"} == private


def test_dead_letter_keeps_original_fields_without_clobbering() -> None:
    fields = render_dead_letter("5-0", "bad", 3, {"text": "", "error": "user's own", "user": "u"})
    assert fields == {
        "text": "",
        "orig_error": "user's own",
        "user": "u",
        "source_id": "5-0",
        "error": "bad",
        "deliveries": "3",
    }


def test_rendered_scores_are_what_json_makes() -> None:
    import random

    from worker.wire import ResultRenderer

    names = ["Cheer", "Game", '引號"與%s', "Chat"]
    renderer = ResultRenderer(names, "m:1")
    rng = random.Random(0)
    for _ in range(500):
        probs = [rng.choice([rng.random(), rng.random() * 1e-6, 1.0, 0.0, 0.5, 0.99995]) for _ in names]
        labels = [n for n, p in zip(names, probs, strict=True) if p > 0.5]
        fields = renderer.render(Comment("7-1", "t", {}), labels, probs, 10)
        assert fields["scores"] == json.dumps(
            {n: round(p, 4) for n, p in zip(names, probs, strict=True)}, ensure_ascii=False, separators=(",", ":")
        )
        assert json.loads(fields["labels"]) == labels
    with pytest.raises(ValueError):
        renderer.render(Comment("7-1", "t", {}), [], [0.1], 10)


def test_long_passthrough_fields_are_cut_and_named() -> None:
    """A 60 KB channel is still a comment someone wants classified: each passthrough field is cut to
    max_passthrough_chars (characters), the comment is kept, and its result names the fields cut."""
    limits = Limits(max_passthrough_chars=256)
    channel, user = "頻" * 20_000, "u" * 257  # 60 KB of UTF-8; one character over
    raw = {
        b"text": "好球".encode(),
        b"channel": channel.encode(),
        b"user": user.encode(),
        b"id": b"x" * 256,
        b"ts": b"1:02",
    }
    parsed = parse_entry("1700000000000-0", raw, limits)
    assert isinstance(parsed, Comment)
    assert parsed.passthrough == {"channel": channel[:256], "user": user[:256], "ts": "1:02", "id": "x" * 256}
    assert parsed.truncated == ("channel", "user")
    fields = render_result(parsed, [], ["Cheer"], [0.1], "m:1", now_ms=1700000000001)
    assert fields["channel"] == channel[:256] and fields["truncated"] == "channel,user"
    assert "truncated" not in render_result(
        parse_entry("1-0", {b"text": b"a", b"channel": b"c"}, limits), [], ["Cheer"], [0.1], "m:1"
    )
    assert Limits().max_passthrough_chars == 256  # the documented default


def test_a_long_passthrough_field_is_cut_in_a_dead_letter_for_deliveries_too() -> None:
    raw = {b"text": b"ok", b"user": b"u" * 1000}
    parsed = parse_entry("1-0", raw, Limits(max_passthrough_chars=10), deliveries=9, max_deliveries=5)
    assert isinstance(parsed, Rejection)
    assert parsed.fields == {"text": "ok", "user": "u" * 10, "truncated": "user"}


def test_the_passthrough_fields_are_listed_once() -> None:
    """The producers' own shape and the worker read the same list (there were two)."""
    from worker.inputs import shapes
    from worker.wire import PASSTHROUGH_FIELDS

    assert shapes.PASSTHROUGH_FIELDS is PASSTHROUGH_FIELDS
    assert not hasattr(shapes, "PASSTHROUGH")


def test_a_retraction_is_parsed_as_one_with_its_target_not_as_a_comment() -> None:
    """Issue 22: the producers push deletions and bans as kind=retract entries; the worker publishes each as a
    retraction (part 1 dead-lettered them with RETRACTION_NOT_APPLIED)."""
    raw = {
        b"kind": b"retract",
        b"action": b"delete",
        b"target_id": b"m1",
        b"channel": b"c",
        b"id": b"delete:m1",
        b"target_user": b"bob",
        b"text": b"ignored",
    }
    parsed = parse_entry("1700000000000-0", raw, Limits())
    assert isinstance(parsed, Retract)
    assert (parsed.action, parsed.target) == ("delete", "m1")
    assert render_retraction(parsed, now_ms=1700000000250) == {
        "source_id": "1700000000000-0",
        "kind": "retract",
        "action": "delete",
        "target_id": "m1",
        "channel": "c",
        "id": "delete:m1",
        "target_user": "bob",
        "latency_ms": "250",
    }
    ban = parse_entry("2-0", {b"kind": b"retract", b"action": b"timeout", b"target_author_id": b"a7"}, Limits())
    assert isinstance(ban, Retract) and render_retraction(ban, 2)["target_author_id"] == "a7"
    assert "target_id" not in render_retraction(ban, 2)
    inferred = parse_entry("3-0", {b"kind": b"retract", b"target_author_id": b"a7"}, Limits())
    assert isinstance(inferred, Retract) and inferred.action == "ban"  # a producer of your own may leave it out


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"action": "delete", "target_author_id": "a1"}, "action delete needs 'target_id'"),
        ({"action": "ban", "target_id": "m1"}, "action ban needs 'target_author_id'"),
        ({"action": "timeout", "target_author_id": " "}, "action timeout needs 'target_author_id'"),
        ({}, "it needs 'target_id' (delete) or 'target_author_id' (ban, timeout)"),
        ({"action": "mute", "target_id": "m1"}, "unknown action 'mute' (one of: delete, ban, timeout)"),
        ({"target_id": "m" * 300}, "retraction target too long: 300 chars"),
    ],
)
def test_a_retraction_without_a_target_is_dead_lettered_with_a_reason(fields: dict[str, str], reason: str) -> None:
    raw = {"kind": "retract", **fields}
    parsed = parse_entry("1-0", {k.encode(): v.encode() for k, v in raw.items()}, Limits(), deliveries=2)
    assert isinstance(parsed, Rejection) and reason in parsed.error
    assert parsed.fields == raw and parsed.deliveries == 2


def test_a_retraction_delivered_too_often_is_dead_lettered() -> None:
    raw = {b"kind": b"retract", b"target_id": b"m1"}
    parsed = parse_entry("1-0", raw, Limits(), deliveries=6, max_deliveries=5)
    assert isinstance(parsed, Rejection) and parsed.error.startswith("delivered 6 times")
