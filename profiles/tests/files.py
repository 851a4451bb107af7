"""Real files for the upload tests and the benchmark, built here: PDFs, DOCX files, a zip bomb."""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(
    lines: list[str] | None = None, *, pad_to: int = 0, password: str | None = None, pages: int = 1
) -> bytes:
    """A PDF whose pages show `lines` in Helvetica (no lines: a page with no text, as a scan has).

    `pad_to`: an attachment of random bytes brings the file to about that size.
    """
    writer = PdfWriter()
    for _ in range(pages):
        page = writer.add_blank_page(width=612, height=792)
        if lines:
            font = DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Font"),
                    NameObject("/Subtype"): NameObject("/Type1"),
                    NameObject("/BaseFont"): NameObject("/Helvetica"),
                    NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
                }
            )
            page[NameObject("/Resources")] = DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
            )
            ops = ["BT", "/F1 12 Tf", "14 TL", "72 740 Td"]
            for line in lines:
                ops.append(f"({_escape(line)}) Tj T*")
            ops.append("ET")
            stream = DecodedStreamObject()
            stream.set_data("\n".join(ops).encode("latin-1"))
            page[NameObject("/Contents")] = writer._add_object(stream)
            page[NameObject("/MediaBox")] = ArrayObject(
                [FloatObject(0), FloatObject(0), FloatObject(612), FloatObject(792)]
            )
    if pad_to:
        writer.add_attachment("padding.bin", os.urandom(max(0, pad_to - 2000)))
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    return data


def docx_bytes(paragraphs: list[str], *, pad_to: int = 0, table: list[list[str]] | None = None) -> bytes:
    """A Word document with these paragraphs (and a table); `pad_to`: an unreferenced stored part
    of random bytes brings the file to about that size (python-docx reads only referenced parts)."""
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    if pad_to:
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("word/media/padding.bin", os.urandom(max(0, pad_to - len(out.getvalue()) - 200)))
    return out.getvalue()


def zip_bomb(*, uncompressed: int) -> bytes:
    """A .docx-shaped zip whose document.xml inflates to `uncompressed` bytes (spaces: ~1000:1)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        chunk = b" " * (1024 * 1024)
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            left = uncompressed
            while left > 0:
                entry.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return out.getvalue()


def zip_of_many_entries(count: int) -> bytes:
    """A .docx-shaped zip of `count` tiny entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        for index in range(count - 2):
            archive.writestr(f"word/part{index}.xml", "")
    return out.getvalue()


def lying_zip(*, declared: int, text_chars: int) -> bytes:
    """A real .docx whose document.xml holds a long text but whose headers declare `declared` bytes."""
    data = bytearray(docx_bytes(["x" * text_chars]))
    name = b"word/document.xml"
    for signature, name_offset, size_offset in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_offset : at + name_offset + len(name)] == name:
                data[at + size_offset : at + size_offset + 4] = declared.to_bytes(4, "little")
            at = data.find(signature, at + 4)
    return bytes(data)


def stored_files(folder: Any) -> list[Any]:
    """Every file under the documents storage's folder."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
