"""The parsers that turn a file's bytes into text: one function per format, run inside the sandbox.

Nothing here imports Django, reads a setting or touches the database: the sandbox's child
process preloads this module and runs a parser on a stranger's bytes with no secret in reach.
A parser gets the bytes and the longest text it may return, and either returns the text or
raises `Refusal` saying why not (the web process turns it into a 413 or a 415).

Adding a format is one function registered in `PARSERS`; its cost is bounded by the sandbox,
whatever the parser does.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

#: No resume has a thousand pages; past this the text is not even looked for.
PDF_MAX_PAGES = 1000


class Refusal(Exception):
    """The file is refused: `status` 413 (too large) or 415 (unreadable), with a stable `code`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def text_too_long(max_chars: int) -> Refusal:
    return Refusal(413, "text_too_long", f"The text is longer than {max_chars} characters.")


def storable(text: str) -> str:
    """Text that every database and encoder takes: PostgreSQL refuses NUL characters, and a lone
    surrogate (which a PDF's broken font map can yield) cannot be written as UTF-8."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")


def _joined(blocks: Iterator[str], max_chars: int) -> str:
    """The blocks joined by newlines; refused as soon as they pass `max_chars` (no need to read on)."""
    parts: list[str] = []
    total = 0
    for block in blocks:
        parts.append(block)
        total += len(block) + 1
        if total > max_chars + 1:
            raise text_too_long(max_chars)
    return storable("\n".join(parts)).strip()


def _out_of_memory(exc: BaseException) -> bool:
    """Whether a parser's error is a failed allocation in C code: lxml reports one as an
    `XMLSyntaxError('unknown error')` whose error log says ERR_NO_MEMORY."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        log = getattr(seen, "error_log", None)
        if log is not None and any(getattr(entry, "type_name", "") == "ERR_NO_MEMORY" for entry in log):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: What a parser reads: the bytes, or a readable and seekable view of them (the child maps the
#: upload's memory file instead of copying it).
Source = bytes | BinaryIO


def _stream(data: Source) -> BinaryIO:
    return io.BytesIO(data) if isinstance(data, bytes | bytearray) else data


def pdf_text(data: Source, max_chars: int) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(_stream(data))
        if reader.is_encrypted:
            raise Refusal(415, "pdf_encrypted", "The PDF is encrypted: upload it without a password.")
        pages = len(reader.pages)
        if pages > PDF_MAX_PAGES:
            raise Refusal(413, "pdf_too_many_pages", f"The PDF has {pages} pages, more than {PDF_MAX_PAGES}.")
        text = _joined((page.extract_text() or "" for page in reader.pages), max_chars)
    except (Refusal, MemoryError):
        raise
    except Exception as exc:
        if _out_of_memory(exc):
            raise MemoryError from None
        # pypdf raises PyPdfError and, on a damaged file, a range of built-in errors (KeyError,
        # ValueError, RecursionError, ...): each means "cannot be read", never a 500.
        raise Refusal(415, "pdf_unreadable", "The PDF cannot be read: the file is damaged.") from None
    if not text:
        raise Refusal(
            415, "pdf_no_text", "The PDF has no extractable text (a scan?): upload a text PDF, .docx or .txt."
        )
    return text


def _docx_broken() -> Refusal:
    return Refusal(415, "docx_broken", "The .docx file is damaged (not a Word document).")


def docx_text(data: Source, max_chars: int) -> str:
    import docx

    try:
        document = docx.Document(_stream(data))
        text = _joined(_docx_blocks(document), max_chars)
    except (Refusal, MemoryError):
        raise
    except Exception as exc:
        if _out_of_memory(exc):
            raise MemoryError from None
        # PackageNotFoundError, BadZipFile (an entry past its declared size or CRC), lxml's
        # XMLSyntaxError, KeyError for a missing part: all "damaged", never a 500.
        raise _docx_broken() from None
    if not text:
        raise Refusal(415, "no_text", "The .docx file contains no text.")
    return text


def _docx_blocks(document: Any) -> Iterator[str]:
    """The paragraphs, then the tables' cell paragraphs (resumes often lay out in tables)."""
    for paragraph in document.paragraphs:
        yield paragraph.text
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                yield cell.text


Parser = Callable[[Source, int], str]

#: The formats the sandbox parses, by the type the bytes were sniffed as.
PARSERS: dict[str, Parser] = {"pdf": pdf_text, "docx": docx_text}
