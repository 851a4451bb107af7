"""The rows of a bulk command's file, and how problems with them are reported.

`json_rows` streams a JSON array or a JSON Lines file, each row with the line
it starts on, so that memory does not grow with the file and every bad row
can be named by its line. `RowError`, `BulkResult`, `Reporter` and
`ProgressFactory` are what `bulk_create` and `bulk_delete` hand back to their
commands.

Why a small scanner and not `ijson` (the kept streaming parser): ijson does
not tell where a value starts (its C backend has no positions at all), and
the commands report every bad row by its line number. The scanner leaves the
parsing of each row to the C `json` decoder (`raw_decode`) and only finds the
rows and counts lines around it. `benchmarks/bulk_users.py --parts reading`
measures both on 100,000 rows: ijson's C backend reads the array ~3x faster
but without lines (reading is a few per cent of an import either way), its
pure-Python backend is slower than the scanner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TextIO

#: Characters read from a file at a time, and the most one row of a JSON array may take.
CHUNK_CHARS = 1 << 16
MAX_ROW_CHARS = 1 << 20

_NOT_SPACE = re.compile(r"[^ \t\r\n]")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
_DECODER = json.JSONDecoder()


# --- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row; `line` 0 means the whole input (or a single command-line user)."""

    line: int
    message: str
    field: str | None = None

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"line {self.line}: {text}" if self.line else text


@dataclass
class BulkResult:
    """What a bulk command did, for its summary and its exit status."""

    rows: int = 0  # rows read (a JSON error that stops the reading counts as one)
    failed: int = 0  # rows not applied because something was wrong with them
    done: int = 0  # users created or deleted
    unchanged: int = 0  # rows that needed nothing (a soft delete of a deleted user)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0


class Progress(Protocol):
    """The part of `tqdm` the services use; commands pass tqdm, tests and scripts nothing."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


ProgressFactory = Callable[[str, "int | None"], Progress]
Reporter = Callable[[RowError], None]


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(description: str, total: int | None) -> Progress:
    return _NoProgress()


def ignore(error: RowError) -> None:
    pass


# --- reading JSON or JSON Lines as a stream ------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadJSON:
    """A row that is not JSON. `fatal`: the rest of the file cannot be read either."""

    message: str
    fatal: bool = False


class _Fatal(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Scanner:
    """A window on a text stream: whitespace skipping, one JSON value at a time, line counting.

    Holds the unread rest of the current chunk plus, while a value spans chunks,
    the chunks it needs: memory stays at a few chunks whatever the file size.
    """

    def __init__(self, stream: TextIO, chunk_chars: int) -> None:
        self.stream, self.chunk_chars = stream, chunk_chars
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def fill(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        part = self.stream.read(self.chunk_chars)
        if not part:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos :] + part, 0
        return True

    def peek(self) -> str | None:
        """Skip whitespace; the next character, or None at the end of the file."""
        while True:
            match = _NOT_SPACE.search(self.buf, self.pos)
            if match:
                self.line += self.buf.count("\n", self.pos, match.start())
                self.pos = match.start()
                return self.buf[self.pos]
            self.line += self.buf.count("\n", self.pos)
            self.pos = len(self.buf)
            if not self.fill():
                return None

    def value(self) -> Any:
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Maybe only cut off by the chunk: read on, up to the size no row reaches.
                if len(self.buf) - self.pos <= MAX_ROW_CHARS and self.fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, exc.pos)
                raise _Fatal(f"Invalid JSON: {exc.msg}.", line) from None
            if (
                isinstance(obj, int | float)
                and not isinstance(obj, bool)
                and _NUMBER_TAIL.fullmatch(self.buf, end)
                and self.fill()
            ):
                continue  # "12" or "-5." at the end of a chunk may go on in the next one
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return obj


def json_rows(path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[int, Any]]:
    """The rows of a JSON array or a JSON Lines file, each with the line it starts on.

    Streams either form (no `json.load` of the whole file), so memory does not
    grow with the file. A JSON Lines row that is not JSON comes as a `BadJSON`
    and reading goes on; a JSON array that breaks cannot be resynchronised, so
    a fatal `BadJSON` ends it.
    """
    with open(path, encoding="utf-8-sig") as stream:
        try:
            scanner = _Scanner(stream, chunk_chars)
            if scanner.peek() == "[":
                yield from _array_rows(scanner)
            else:
                stream.seek(0)
                yield from _line_rows(stream)
        except UnicodeDecodeError as exc:
            yield 0, BadJSON(f"The file is not UTF-8 text ({exc.reason}).", fatal=True)


def _array_rows(scanner: _Scanner) -> Iterator[tuple[int, Any]]:
    scanner.pos += 1  # the "["
    try:
        char = scanner.peek()
        if char == "]":
            scanner.pos += 1
        else:
            while True:
                if char is None:
                    raise _Fatal("Unexpected end of file: the array is not closed with ].", scanner.line)
                line = scanner.line
                yield line, scanner.value()
                char = scanner.peek()
                if char == ",":
                    scanner.pos += 1
                    char = scanner.peek()
                elif char == "]":
                    scanner.pos += 1
                    break
                elif char is not None:
                    raise _Fatal("Invalid JSON: expected , or ] after a row.", scanner.line)
        if scanner.peek() is not None:
            raise _Fatal("Invalid JSON: unexpected data after the closing ].", scanner.line)
    except _Fatal as exc:
        yield exc.line, BadJSON(exc.message, fatal=True)


def _line_rows(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, BadJSON(f"Invalid JSON: {exc.msg} (column {exc.colno}).")


def rows_checked(
    path: str | Path,
    result: BulkResult,
    progress: ProgressFactory,
    errors: list[RowError],
    *,
    flush: Callable[[], None],
    batch_size: int,
) -> Iterator[tuple[int, Any]]:
    """The check pass's reading of the file: each row with its line, counted in `result` and shown on
    a "Checking" bar; a row that is not JSON comes as its `BadJSON`, its error added to `errors`.
    `flush` (the batch's queries against the database) runs after every `batch_size` rows and at
    the end."""
    bar = progress("Checking", None)
    try:
        for count, (line, data) in enumerate(json_rows(path), start=1):
            result.rows += 1
            bar.update()
            if isinstance(data, BadJSON):
                errors.append(RowError(line, data.message))
            yield line, data
            if count % batch_size == 0:
                flush()
    finally:
        bar.close()
    flush()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
