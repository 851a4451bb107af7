"""Hostile files, built here byte by byte (builders, not binaries): the corpus of the upload tests,
the upload drill (testing/drills) and benchmarks/uploads.py.

Each builder makes the smallest file that reproduces one attack from the outside look of issue
20 (a parser driven into CPU, memory or log lines by a few kilobytes of upload).
"""

from __future__ import annotations

import io
import zipfile
import zlib

# --- PDF: raw objects with a cross-reference table, so that any shape can be written -----------


def raw_pdf(objects: list[bytes], *, root: int = 1) -> bytes:
    """A PDF of the given object bodies, numbered from 1, with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    )
    return out.getvalue()


def _stream(data: bytes, *, compress: bool = True) -> bytes:
    if compress:
        packed = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def pdf_shared_stream_bomb(*, pages: int = 1000, stream_bytes: int = 4 * 1024 * 1024) -> bytes:
    """Every page's /Contents is the same flate stream of empty text operators.

    The stream inflates to `stream_bytes` and is parsed again for each page; it yields no text, so
    a limit on the text never stops the work. 1,000 pages x 4 MB is a ~166 KB upload; 20 x 1 MB
    is 6 KB.
    """
    operators = b"BT ET " * (stream_bytes // 6)
    # 1 catalog, 2 pages, 3 font, 4 the shared stream, 5.. the pages
    kids = b" ".join(b"%d 0 R" % (5 + index) for index in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        _FONT,
        _stream(operators),
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    objects += [page] * pages
    return raw_pdf(objects)


def pdf_nested_resources(*, depth: int = 20_000) -> bytes:
    """A page whose /Resources nests `depth` dictionaries (180 KB at 20,000), with one line of text."""
    nested = b"<< /A " * depth + b"1" + b" >>" * depth
    content = b"BT /F1 12 Tf 72 720 Td (nested resources) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> /X "
        + nested
        + b" >> /Contents 4 0 R >>",
        _stream(content, compress=False),
        _FONT,
    ]
    return raw_pdf(objects)


def pdf_cyclic_page_tree() -> bytes:
    """A page tree whose /Pages node lists itself among its kids."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        _stream(b"BT ET", compress=False),
    ]
    return raw_pdf(objects)


def pdf_forged_log_line(forged: str) -> bytes:
    """A PDF whose font's /Encoding is a name carrying `#0A` newlines and then `forged`.

    pypdf warns about an encoding it does not know, quoting the name: a parser warning that,
    written unescaped, puts `forged` on a line of its own in the service's log.
    """
    name = "/X#0A" + forged.replace(" ", "#20").replace("[", "#5B").replace("]", "#5D") + "#0A"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding " + name.encode() + b" >>"
    content = b"BT /F1 12 Tf 72 720 Td (forged log line) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        _stream(content, compress=False),
        font,
    ]
    return raw_pdf(objects)


# --- DOCX: the parts a Word document needs, and parts of any name and size --------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)


def _content_types(overrides: str = "", padding: int = 0) -> bytes:
    filler = "<!--" + "x" * padding + "-->" if padding else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        + overrides
        + filler
        + "</Types>"
    ).encode()


def _document(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}" xmlns:r="{_R}">'
        f"<w:body>{body}</w:body></w:document>"
    ).encode()


def _zip(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


_TEXT = "<w:p><w:r><w:t>A paragraph of text</w:t></w:r></w:p>"


def docx_empty_paragraphs(*, xml_bytes: int = 16 * 1024 * 1024 - 1024) -> bytes:
    """`word/document.xml` of `xml_bytes` of `<w:p/>`: a 25 KB zip that lxml makes a ~1 GB tree
    (just under the per-part cap, so that the parser is what meets it)."""
    return _zip(
        {
            "[Content_Types].xml": _content_types(),
            "_rels/.rels": _PKG_RELS.encode(),
            "word/document.xml": _document(_TEXT + "<w:p/>" * (xml_bytes // 6)),
        }
    )


def docx_header_part(*, name: str = "word/h1.bin", xml_bytes: int = 48 * 1024 * 1024) -> bytes:
    """A header part under a name that does not end in .xml, holding `xml_bytes` of XML."""
    header = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:hdr xmlns:w="{_W}">'
        + "<w:p/>" * (xml_bytes // 6)
        + "</w:hdr>"
    ).encode()
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId9" Type="{_R}/header" Target="{name.removeprefix("word/")}"/>'
        "</Relationships>"
    )
    override = (
        f'<Override PartName="/{name}" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/>'
    )
    return _zip(
        {
            "[Content_Types].xml": _content_types(override),
            "_rels/.rels": _PKG_RELS.encode(),
            "word/_rels/document.xml.rels": rels.encode(),
            "word/document.xml": _document(_TEXT),
            name: header,
        }
    )


def docx_huge_content_types(*, padding: int = 15 * 1024 * 1024) -> bytes:
    """A DOCX whose `[Content_Types].xml` carries `padding` bytes (a comment) around its types."""
    return _zip(
        {
            "[Content_Types].xml": _content_types(padding=padding),
            "_rels/.rels": _PKG_RELS.encode(),
            "word/document.xml": _document(_TEXT),
        }
    )


#: The binary a `.txt` must not be: the start of an ELF executable, with no NUL byte in it.
ELF_WITHOUT_NUL = b"\x7fELF\x02\x01\x01\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10" * 64
