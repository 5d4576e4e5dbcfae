from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.errors import InputFileError
from worker.inputs import parse_offset, read_inputs, read_records, read_rows


def test_offsets() -> None:
    assert parse_offset("0:36") == 36 and parse_offset("12:05") == 725 and parse_offset("1:00:01") == 3601
    assert parse_offset("abc") is None and parse_offset("1:2:3:4") is None


def test_reads_every_format(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "一", "user": "u"}\n\n{"text": "二", "ts": "0:05"}\n', "utf-8")
    (tmp_path / "b.csv").write_text("text,user\n三,v\n", "utf-8")
    (tmp_path / "c.txt").write_text("四\n\n五\n", "utf-8")
    chat = [{"time": "1:02", "user": "w", "content": "六", "加油": 0.9}]
    (tmp_path / "d.json").write_text(json.dumps(chat, ensure_ascii=False), "utf-8")
    records = read_records([tmp_path], channel="ch")
    assert [r.fields["text"] for r in records] == ["一", "二", "三", "四", "五", "六"]
    assert records[0].fields == {"text": "一", "user": "u", "channel": "ch"}
    assert records[5].fields["ts"] == "1:02" and records[5].offset_s == 62
    assert len(read_records([tmp_path], limit=2)) == 2


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_records([tmp_path / "missing.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", "utf-8")
    with pytest.raises(InputFileError, match="invalid JSON"):
        read_records([bad])
    csv_file = tmp_path / "x.csv"
    csv_file.write_text("body\nhi\n", "utf-8")
    with pytest.raises(InputFileError, match="'text' column"):
        read_records([csv_file])
    binary = tmp_path / "y.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputFileError, match="cannot read"):
        read_records([binary])


def test_a_broken_row_is_skipped_with_a_warning_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(b'{"text": "j0"}\n\n{oops\n{"text": "\xff"}\n[1]\n{"text": "\\ud800"}\n{"text": "j1"}\n')
    listed = tmp_path / "b.json"
    listed.write_text('[{"text": "l0"}, 3, {"text": "l1"}]', "utf-8")
    csv_file = tmp_path / "c.csv"
    csv_file.write_bytes(
        b'text,user\nc0,u\n"c1\nspans lines",u\nc2 \xfe,u\n"' + b"x" * 140_000 + b'",u\n"c3 never closes,u\nc4,u\n'
    )
    reading = read_inputs([jsonl, listed, csv_file])
    assert [r.fields["text"] for r in reading.records] == [
        "j0",
        "j1",
        "l0",
        "l1",
        "c0",
        "c1\nspans lines",
        "c3 never closes,u",
        "c4",
    ]
    assert reading.unreadable == 7
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [m.split(" (")[0].split(": ", 1)[0].removeprefix("skipped unreadable line ") for m in warned] == [
        f"{jsonl}:3",
        f"{jsonl}:4",
        f"{jsonl}:5",
        f"{jsonl}:6",
        f"{listed} item 2",
        f"{csv_file}:5",
        f"{csv_file}:6",
    ]
    assert len(read_inputs([jsonl, csv_file], limit=3).records) == 3
    jsonl.write_text('{"text": "j0"}\n{oops\n{"text": "j1"}\n', "utf-8")
    with pytest.raises(InputFileError, match=r"a.jsonl:2: invalid JSON"):
        read_rows(jsonl)  # training and reports stay strict


def test_reads_real_chat_logs(tvl_chat_dir: Path) -> None:
    first = sorted(tvl_chat_dir.glob("*.json"))[0]
    records = read_records([first])
    assert records and all(r.fields["text"] for r in records)
    assert all(r.offset_s is not None for r in records)
