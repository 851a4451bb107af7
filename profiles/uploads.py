"""Uploaded files to text: the type is read from the bytes, checked against the extension, and
every parser runs under a bound.

- the request body: `UPLOAD_MAX_BYTES`, refused from `Content-Length` before anything is read,
  and counted chunk by chunk by `SizeLimitUploadHandler` (a body without a length too);
- a `.docx` (a zip): entry count and total uncompressed size from its central directory,
  checked before anything is inflated (`zipfile` then holds each entry to its declared size);
- a `.pdf`: pypdf's own per-stream decompression limits, and extraction stops as soon as
  the text passes `DOCUMENT_MAX_TEXT_CHARS`;
- the text: at most `DOCUMENT_MAX_TEXT_CHARS` characters (413 beyond), so that every event
  carrying it fits a Kafka message.

Every refusal is a `ServiceError` with a status (413, 415) and a `code` saying which rule.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework import status

from config.errors import ServiceError

logger = logging.getLogger(__name__)

EXTENSIONS = ("txt", "pdf", "docx")
# Room for the multipart envelope around the file (boundaries, part headers, a title).
MULTIPART_OVERHEAD = 64 * 1024

# Bounds of the parsers' work beyond the byte limits: no resume has a thousand pages, and a
# document.xml of 16 MiB is far past any text of DOCUMENT_MAX_TEXT_CHARS (lxml builds a tree
# several times the size of the XML it parses).
PDF_MAX_PAGES = 1000
DOCX_MAX_XML_PART_BYTES = 16 * 1024 * 1024

PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"


class UploadRefused(ServiceError):
    """415: the upload is not what its extension says, or cannot be read as text."""

    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_upload"


class TooLarge(ServiceError):
    """413: the upload, what it expands to, or its text is over a limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "too_large"


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


def _storable(text: str) -> str:
    """Text that every database and encoder takes: PostgreSQL refuses NUL characters, and a lone
    surrogate (which a PDF's broken font map can yield) cannot be written as UTF-8."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")


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
    if ext == "pdf":
        if found != "pdf":
            raise _mismatch(ext, found)
        return Extracted(_pdf_text(file), "pdf")
    if ext == "docx":
        if found != "zip":
            raise _mismatch(ext, found)
        return Extracted(_docx_text(file), "docx")
    if found != "other":
        raise _mismatch(ext, found)
    return Extracted(_txt_text(file), "txt")


def _txt_text(file: IO[bytes]) -> str:
    # The upload is already within UPLOAD_MAX_BYTES; a UTF-8 text of that size is at most that
    # many characters, and is refused below if it is over the text limit.
    data = file.read(settings.UPLOAD_MAX_BYTES + 1)
    if b"\x00" in data:
        raise UploadRefused("The .txt file contains binary data (NUL bytes).", code="txt_binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadRefused(
            f"The .txt file is not UTF-8 (invalid byte at position {exc.start}): save it as UTF-8.",
            code="txt_not_utf8",
        ) from None
    return _require_text(_check_length(text), ".txt file")


def _pdf_text(file: IO[bytes]) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(file)
        if reader.is_encrypted:
            raise UploadRefused("The PDF is encrypted: upload it without a password.", code="pdf_encrypted")
        if len(reader.pages) > PDF_MAX_PAGES:
            raise TooLarge(
                f"The PDF has {len(reader.pages)} pages, more than {PDF_MAX_PAGES}.",
                code="pdf_too_many_pages",
            )
        limit = settings.DOCUMENT_MAX_TEXT_CHARS
        parts: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            total += len(text) + 1
            if total > limit + 1:  # no need to read the rest: it is over the limit already
                raise text_too_long()
    except ServiceError:
        raise
    except Exception as exc:
        # pypdf raises PyPdfError and, on a damaged file, a range of built-in errors (KeyError,
        # ValueError, RecursionError, ...): each means "cannot be read", a 415, never a 500.
        logger.info(
            "unreadable PDF: %s: %s", type(exc).__name__, exc, exc_info=not isinstance(exc, PyPdfError)
        )
        raise UploadRefused("The PDF cannot be read: the file is damaged.", code="pdf_unreadable") from None
    text = _storable("\n".join(parts)).strip()
    if not text:
        raise UploadRefused(
            "The PDF has no extractable text (a scan?): upload a text PDF, .docx or .txt.", code="pdf_no_text"
        )
    return _check_length(text)


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
        if entry.filename.endswith((".xml", ".rels")) and entry.file_size > DOCX_MAX_XML_PART_BYTES:
            raise TooLarge(
                f"The .docx part {entry.filename} expands to {entry.file_size} bytes, "
                f"more than {DOCX_MAX_XML_PART_BYTES}.",
                code="docx_too_large",
            )
    names = {entry.filename for entry in entries}
    if "[Content_Types].xml" not in names or "word/document.xml" not in names:
        raise _docx_broken()
    file.seek(0)


def _docx_broken() -> UploadRefused:
    return UploadRefused("The .docx file is damaged (not a Word document).", code="docx_broken")


def _docx_text(file: IO[bytes]) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _docx_guard(file)
    try:
        document = docx.Document(file)
        limit = settings.DOCUMENT_MAX_TEXT_CHARS
        parts: list[str] = []
        total = 0
        for block in _docx_blocks(document):
            parts.append(block)
            total += len(block) + 1
            if total > limit + 1:
                raise text_too_long()
    except ServiceError:
        raise
    except Exception as exc:
        # PackageNotFoundError, BadZipFile (an entry past its declared size or CRC), lxml's
        # XMLSyntaxError, KeyError for a missing part: all "damaged", a 415, never a 500.
        expected = isinstance(exc, PackageNotFoundError | zipfile.BadZipFile | KeyError)
        logger.info("unreadable DOCX: %s: %s", type(exc).__name__, exc, exc_info=not expected)
        raise _docx_broken() from None
    return _require_text(_check_length(_storable("\n".join(parts)).strip()), ".docx file")


def _docx_blocks(document: Any) -> Any:
    """The paragraphs, then the tables' cell paragraphs (resumes often lay out in tables)."""
    for paragraph in document.paragraphs:
        yield paragraph.text
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                yield cell.text


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
