"""The streaming reader behind the bulk commands: JSON arrays and JSON Lines without loading the file.

The issue: "stream the file; don't build all rows in memory". The big numbers
are in benchmarks/bulk_users.py; here, correctness at every chunk boundary
and a bounded buffer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from accounts import bulk_rows
from accounts.bulk_rows import BadJSON, json_rows

TRICKY = [
    {"username": "a]b,c", "note": 'quote " and \\ backslash', "n": 12345},
    12345678,
    -0.5e10,
    "a string with [brackets], {braces} and \\u00e9 \u00e9 \u4e2d",
    {"nested": {"list": [1, [2, [3]]], "empty": {}}, "t": True, "f": False, "z": None},
    [],
    "",
]


SCRATCH: list[Path] = []


@pytest.fixture(autouse=True)
def _scratch_file(tmp_path: Path):
    SCRATCH[:] = [tmp_path / "rows.json"]
    yield
    SCRATCH.clear()


def json_rows_of(text: str, chunk_chars: int = bulk_rows.CHUNK_CHARS) -> list[tuple[int, Any]]:
    """Write `text` to a file and read it back through `json_rows`."""
    SCRATCH[0].write_text(text, encoding="utf-8")
    return list(json_rows(SCRATCH[0], chunk_chars=chunk_chars))


def expected_lines(text: str, values: list[Any]) -> list[int]:
    """Where each top-level value of an array printed with indent=1 starts."""
    lines = text.split("\n")
    starts = [n for n, line in enumerate(lines, start=1) if line.startswith(" ") and line[1] not in " }]"]
    assert len(starts) == len(values)
    return starts


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 64, bulk_rows.CHUNK_CHARS])
def test_a_json_array_at_every_chunk_size(chunk_chars):
    text = json.dumps(TRICKY, indent=1, ensure_ascii=False)
    got = json_rows_of(text, chunk_chars)
    assert [value for _, value in got] == TRICKY
    assert [line for line, _ in got] == expected_lines(text, TRICKY)


@pytest.mark.parametrize("chunk_chars", [1, 5, bulk_rows.CHUNK_CHARS])
def test_a_compact_array_and_a_bom(chunk_chars):
    text = "\ufeff  \n\n" + json.dumps(TRICKY, ensure_ascii=True) + "\n\n"
    got = json_rows_of(text, chunk_chars)
    assert got == [(3, value) for value in TRICKY]


def test_numbers_split_by_a_chunk_are_read_whole():
    assert [v for _, v in json_rows_of("[1234567, 89, 1e100]", 3)] == [1234567, 89, 1e100]


def test_json_lines_go_on_after_a_bad_line():
    text = '{"a": 1}\n\n  \n{"b": \n[1, 2]\n"x"\n'
    got = json_rows_of(text)
    assert got[0] == (1, {"a": 1})
    assert got[1][0] == 4
    assert isinstance(got[1][1], BadJSON)
    assert not got[1][1].fatal
    assert got[2:] == [(5, [1, 2]), (6, "x")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[1,\n2,\n", 3, "Unexpected end of file: the array is not closed with ]."),
        ("[1,\n2\n3]", 3, "Invalid JSON: expected , or ] after a row."),
        ("[1,\n2,\n]", 3, "Invalid JSON: Expecting value."),
        ("[1]\n\n{}", 3, "Invalid JSON: unexpected data after the closing ]."),
        ('[1,\n"unterminated', 2, "Invalid JSON: Unterminated string starting at."),
    ],
)
def test_a_broken_array_stops_with_a_fatal_error_where_it_breaks(text, line, message):
    *good, (got_line, bad) = json_rows_of(text)
    assert isinstance(bad, BadJSON)
    assert bad.fatal
    assert got_line == line
    assert bad.message == message
    assert all(not isinstance(value, BadJSON) for _, value in good)


def test_not_utf8_is_one_fatal_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"name": "Jos\u00e9"}]'.encode("latin-1"))
    ((_, bad),) = list(json_rows(path))
    assert isinstance(bad, BadJSON)
    assert bad.fatal
    assert "not UTF-8" in bad.message


def test_the_buffer_stays_a_few_chunks_whatever_the_file_size(monkeypatch):
    """A 2,000-row array read 64 characters at a time never holds more than a row and two chunks."""
    biggest = 0
    fill = bulk_rows._Scanner.fill

    def watching_fill(self: Any) -> bool:
        nonlocal biggest
        more = fill(self)
        biggest = max(biggest, len(self.buf))
        return more

    monkeypatch.setattr(bulk_rows._Scanner, "fill", watching_fill)
    rows = [{"username": f"user{n}", "email": f"user{n}@example.com"} for n in range(2000)]
    text = json.dumps(rows)
    got = json_rows_of(text, 64)
    assert len(got) == 2000
    assert len(text) > 100_000
    assert biggest <= 64 * 2 + len(json.dumps(rows[-1]))


def test_a_row_bigger_than_the_limit_is_an_error_not_a_memory_hog(monkeypatch):
    monkeypatch.setattr(bulk_rows, "MAX_ROW_CHARS", 100)
    (_, bad), *_ = json_rows_of('[{"x": "' + "y" * 1000 + "\n", 16)
    assert isinstance(bad, BadJSON)
    assert bad.fatal
