"""Uploaded files to text: the cheap checks here, in the web process; the parsing in a sandbox.

In the web process, before any parser runs (each costs at most a read of the bytes):
- the request body: `UPLOAD_MAX_BYTES`, refused from `Content-Length` before anything is read,
  and counted chunk by chunk by `SizeLimitUploadHandler` (a body without a length too);
- the type, sniffed from the first bytes and checked against the extension;
- a `.txt`: UTF-8, and no control character but tab, newline and carriage return;
- a `.docx` (a zip): entry count, total and per-part uncompressed size from its central
  directory, whatever the parts are named, before anything is inflated (`zipfile` then holds
  each entry to its declared size).

A `.pdf` or `.docx` that passes is parsed by a confined child process (`profiles.extraction`):
`DOCUMENT_PARSE_SECONDS` of CPU, `DOCUMENT_PARSE_MEMORY_MB` of memory, a wall-clock deadline;
past any of them the upload is a 415 `parse_limit`, and the web process has spent nothing but a
wait. The text: at most `DOCUMENT_MAX_TEXT_CHARS` characters (413 beyond), so that every event
carrying it fits a Kafka message.

Every refusal is a domain error (`TooLarge`, `Unsupported`, `Unavailable`) with a `code` saying which rule.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from core.errors import TooLarge, Unavailable, Unsupported

from .extraction import sandbox
from .extraction.parsers import Refusal, storable

logger = logging.getLogger(__name__)

EXTENSIONS = ("txt", "pdf", "docx")
# Room for the multipart envelope around the file (boundaries, part headers, a title).
MULTIPART_OVERHEAD = 64 * 1024

# Any one part of a .docx, whatever its name: 16 MiB of XML is far past any text of
# DOCUMENT_MAX_TEXT_CHARS (lxml builds a tree several times the size of the XML it parses), and
# python-docx reads every part, XML or not, named .xml or not.
DOCX_MAX_PART_BYTES = 16 * 1024 * 1024
#: How long an upload waits for a free extraction slot of its process before a 503.
PARSE_QUEUE_SECONDS = 2.0
# Control characters a text file does not hold: C0 but tab, newline, carriage return; DEL; C1.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"


class UploadRefused(Unsupported):
    """The upload is not what its extension says, or cannot be read as text (the API's 415)."""

    code = "unsupported_upload"


class ParseBusy(Unavailable):
    """Every extraction slot of this process is taken; the client is told when to retry (503)."""

    code = "parse_busy"


def upload_too_large() -> TooLarge:
    return TooLarge(f"The upload is larger than {settings.UPLOAD_MAX_BYTES} bytes.", code="upload_too_large")


def text_too_long() -> TooLarge:
    return TooLarge(
        f"The text is longer than {settings.DOCUMENT_MAX_TEXT_CHARS} characters.", code="text_too_long"
    )


class SizeLimitUploadHandler(FileUploadHandler):
    """First of the request's upload handlers: refuses an oversized body before it is read.

    `handle_raw_input` sees `Content-Length` before the parser reads a byte; the chunk count
    catches what the length did not say (a body whose length was not given up front).
    """

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> None:
        if content_length > settings.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD:
            raise upload_too_large()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received = start + len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            raise upload_too_large()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@dataclass(frozen=True)
class Extracted:
    text: str
    source: str  # "txt", "pdf" or "docx"


def extension_of(name: str) -> str:
    """The lower-case extension of the client's file name (only used to know what to expect)."""
    _, ext = os.path.splitext(os.path.basename(name or ""))
    return ext.lower().lstrip(".")


def _sniff(head: bytes) -> str:
    """What the first bytes say the file is: pdf, zip, or text (anything else)."""
    if head.startswith(PDF_MAGIC):
        return "pdf"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    return "other"


_NAMES = {"pdf": "a PDF", "zip": "a zip archive", "other": "neither a PDF nor a zip archive"}


def _mismatch(expected: str, found: str) -> UploadRefused:
    return UploadRefused(
        f"The file's content does not match its extension: .{expected} expected, the bytes are {_NAMES[found]}.",
        code="content_mismatch",
    )


def _check_length(text: str) -> str:
    if len(text) > settings.DOCUMENT_MAX_TEXT_CHARS:
        raise text_too_long()
    return text


def _require_text(text: str, what: str) -> str:
    if not text.strip():
        raise UploadRefused(f"The {what} contains no text.", code="no_text")
    return text


def extract_text(file: IO[bytes], name: str) -> Extracted:
    """The text of an uploaded file, after checking its bytes against its extension."""
    ext = extension_of(name)
    if ext not in EXTENSIONS:
        raise UploadRefused(
            f"Unsupported file type {('.' + ext) if ext else '(no extension)'}: upload .txt, .pdf or .docx.",
            code="unsupported_type",
        )
    file.seek(0)
    head = file.read(8)
    file.seek(0)
    found = _sniff(head)
    expected = {"pdf": "pdf", "docx": "zip"}.get(ext, "other")
    if found != expected:
        raise _mismatch(ext, found)
    if ext == "txt":
        return Extracted(_txt_text(file), "txt")
    if ext == "docx":
        _docx_guard(file)
    file.seek(0)
    return Extracted(_sandboxed_text(ext, file), ext)


def _txt_text(file: IO[bytes]) -> str:
    # The upload is already within UPLOAD_MAX_BYTES; a UTF-8 text of that size is at most that
    # many characters, and is refused below if it is over the text limit.
    data = file.read(settings.UPLOAD_MAX_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadRefused(
            f"The .txt file is not UTF-8 (invalid byte at position {exc.start}): save it as UTF-8.",
            code="txt_not_utf8",
        ) from None
    control = _CONTROL.search(text)
    if control is not None:
        # A binary renamed .txt (an executable, an image) decodes as UTF-8 often enough; its
        # control characters give it away. Which one, and where, helps the sender find it.
        raise UploadRefused(
            f"The .txt file is not plain text: control character U+{ord(control.group()):04X} "
            f"at position {control.start()}.",
            code="txt_not_text",
        )
    return _require_text(_check_length(text), ".txt file")


def _sandboxed_text(kind: str, file: IO[bytes]) -> str:
    cpu_seconds = settings.DOCUMENT_PARSE_SECONDS
    limits = sandbox.Limits(
        cpu_seconds=cpu_seconds,
        memory_bytes=settings.DOCUMENT_PARSE_MEMORY_MB * 1024 * 1024,
        max_chars=settings.DOCUMENT_MAX_TEXT_CHARS,
        # A child at a lower priority on a busy machine gets less than a core: room for that.
        wall_seconds=2 * cpu_seconds + 1,
    )
    try:
        text = sandbox.extract(
            kind, file, limits, slots=settings.DOCUMENT_PARSE_CONCURRENCY, wait_seconds=PARSE_QUEUE_SECONDS
        )
    except sandbox.Busy:
        logger.warning("%s upload refused: every extraction slot is busy", kind)
        raise ParseBusy(
            "The service is busy reading other files: try again shortly.", retry_after=cpu_seconds
        ) from None
    except sandbox.ParseLimit as over:
        logger.warning("%s upload refused: its parsing passed the %s limit", kind, over.reason)
        raise UploadRefused(
            f"The file could not be read within the limits ({cpu_seconds} s of CPU, "
            f"{settings.DOCUMENT_PARSE_MEMORY_MB} MB of memory): it is too complex or damaged.",
            code="parse_limit",
        ) from None
    except Refusal as refusal:
        error = TooLarge if refusal.status == 413 else UploadRefused
        raise error(refusal.detail, code=refusal.code) from None
    return _check_length(storable(text))


def _docx_guard(file: IO[bytes]) -> None:
    """Refuse a zip bomb from the central directory alone, before any entry is inflated."""
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise UploadRefused("The .docx file is damaged (not a readable zip).", code="docx_broken") from None
    if len(entries) > settings.DOCX_MAX_ENTRIES:
        raise TooLarge(
            f"The .docx file holds {len(entries)} entries, more than {settings.DOCX_MAX_ENTRIES}.",
            code="docx_too_many_entries",
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > settings.DOCX_MAX_UNCOMPRESSED_BYTES:
        raise TooLarge(
            f"The .docx file expands to {declared} bytes, more than {settings.DOCX_MAX_UNCOMPRESSED_BYTES}.",
            code="docx_too_large",
        )
    for entry in entries:
        if entry.file_size > DOCX_MAX_PART_BYTES:
            raise TooLarge(
                f"The .docx part {entry.filename!a} expands to {entry.file_size} bytes, "
                f"more than {DOCX_MAX_PART_BYTES}.",
                code="docx_too_large",
            )
    names = {entry.filename for entry in entries}
    if "[Content_Types].xml" not in names or "word/document.xml" not in names:
        raise UploadRefused("The .docx file is damaged (not a Word document).", code="docx_broken")
    file.seek(0)


def prepare_upload(request: Any) -> None:
    """Before a multipart body is parsed: the size guard first among the upload handlers, and
    uploads spooled to disk (never the whole file in memory).

    A body sent without `Content-Length` (chunked) is read here up to the limit and no further:
    Django would otherwise read none of it, since it trusts only a declared length. Past the
    limit the client gets a 413 while the rest stays unread.
    """
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    request.upload_handlers = [SizeLimitUploadHandler(request), TemporaryFileUploadHandler(request)]
    meta = request.META
    if meta.get("CONTENT_LENGTH") or not meta.get("wsgi.input_terminated"):
        return
    import tempfile

    from django.core.handlers.wsgi import LimitedStream

    limit = settings.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (handed to the request)
    size = 0
    source = meta["wsgi.input"]
    while True:
        chunk = source.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            spool.close()
            raise upload_too_large()
        spool.write(chunk)
    spool.seek(0)
    meta["CONTENT_LENGTH"] = str(size)
    # Django's request reads its body from `_stream`, a length-limited view of wsgi.input made
    # when the length was unknown (0): point it at the spooled copy, which has a length now.
    request._stream = LimitedStream(spool, size)  # type: ignore[arg-type]
