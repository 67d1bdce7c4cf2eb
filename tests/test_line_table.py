"""JSON Lines read by row: what the cached paper table and chunk texts are made of."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.line_table import KeyedRows, LineTable, write_lines


def test_rows_come_back_as_written_and_one_at_a_time(tmp_path: Path) -> None:
    rows = [{"id": "a", "title": "Ünïcode ✓"}, "a line\nwith a newline", 3, {"id": "z"}]
    write_lines(tmp_path / "t.jsonl", rows)
    table = LineTable(tmp_path / "t.jsonl")
    assert len(table) == 4 and list(table) == rows and table[1] == rows[1]
    with pytest.raises(IndexError):
        table[4]
    keyed = KeyedRows({"a": 0, "z": 3}, table, lambda row: row["id"].upper())
    assert keyed["z"] == "Z" and "a" in keyed and "b" not in keyed and list(keyed) == ["a", "z"]
    assert keyed.get("b") is None and len(keyed) == 2


def test_a_reader_keeps_the_file_it_opened_when_a_new_one_is_swapped_in(tmp_path: Path) -> None:
    """A cache is replaced by renaming a new folder over the old: open tables stay whole."""
    write_lines(tmp_path / "t.jsonl", ["old"] * 3)
    table = LineTable(tmp_path / "t.jsonl")
    write_lines(tmp_path / "new.jsonl", ["a much longer new row"] * 5)
    (tmp_path / "new.jsonl").rename(tmp_path / "t.jsonl")
    assert list(table) == ["old"] * 3
