"""Uploads (API.md → "Resumes, requirements, processing"): the type read from the bytes and checked
against the extension, 415 with a detail saying which failure, the size limits (413) enforced
before the body is read or anything is inflated, and files kept under generated names.

Every file here is a real one, built by `files.py`.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from profiles.models import Requirements, Resume

from . import files

pytestmark = pytest.mark.django_db

RESUMES = "/api/v1/resumes"
REQUIREMENTS = "/api/v1/requirements"


def upload(
    client,
    name: str,
    data: bytes,
    *,
    url: str = RESUMES,
    title: str | None = None,
    content_type: str = "application/octet-stream",
):
    body = {"file": SimpleUploadedFile(name, data, content_type=content_type)}
    if title is not None:
        body["title"] = title
    return client.post(url, body, format="multipart")


def refused(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body["detail"]


class CountingStream(io.BytesIO):
    """A request body that remembers how much of it the server read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def raw_multipart(client, name: str, data: bytes, *, with_length: bool, terminated: bool = False):
    """A multipart upload whose body and Content-Length the test controls (as a WSGI server passes them)."""
    payload = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile(name, data)})
    stream = CountingStream(payload)
    extra = {"wsgi.input": stream, "CONTENT_LENGTH": str(len(payload)) if with_length else ""}
    if terminated:
        extra["wsgi.input_terminated"] = True
    response = client.generic("POST", RESUMES, data=payload, content_type=MULTIPART_CONTENT, **extra)
    return response, stream


# --- what each type gives ------------------------------------------------------------------------


def test_a_utf8_txt_upload_is_stored_under_a_generated_name(auth_client, user, document_dir):
    text = "Ада Лавлейс\nAnalyst, Difference Engine\n"
    response = upload(auth_client, "ada-lovelace-cv.txt", text.encode(), title="My resume")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["text"] == text
    assert body["title"] == "My resume"
    assert body["source"] == "txt"
    assert body["file_name"] == "ada-lovelace-cv.txt"
    assert set(body) >= {"id", "title", "text", "created_at"}
    resume = Resume.objects.get(id=body["id"], user=user)
    [stored] = files.stored_files(document_dir)
    # A generated name: nothing of the client's (random hex may hold "ada"; it cannot hold this).
    assert "lovelace" not in stored.name
    assert re.fullmatch(r"[0-9a-f]{32}\.txt", stored.name)
    assert stored.suffix == ".txt"
    assert stored.read_bytes() == text.encode()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert resume.file.name == f"resume/{stored.name}"


def test_a_utf8_txt_with_a_bom_loses_the_bom(auth_client, document_dir):
    response = upload(auth_client, "bom.txt", "\ufeffHello".encode())
    assert response.json()["text"] == "Hello"


def test_a_pdf_upload_gives_its_text(auth_client, document_dir):
    response = upload(auth_client, "cv.pdf", files.pdf_bytes(["Grace Hopper", "Compilers (COBOL)"]))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["text"] == "Grace Hopper\nCompilers (COBOL)"
    assert body["source"] == "pdf"
    assert body["title"] == "cv"
    assert [p.suffix for p in files.stored_files(document_dir)] == [".pdf"]


def test_a_pdf_whose_text_holds_nul_characters_is_stored_without_them(auth_client, document_dir):
    """PostgreSQL refuses NUL in text: the extracted text drops them rather than fail the insert."""
    response = upload(auth_client, "nul.pdf", files.pdf_bytes(["Null\x00here"]))
    assert response.status_code == 201, response.content
    assert response.json()["text"] == "Nullhere"
    assert Resume.objects.get().text == "Nullhere"


def test_json_text_with_a_nul_character_is_400(auth_client):
    assert auth_client.post(RESUMES, {"text": "a\u0000b"}, format="json").status_code == 400


def test_a_docx_upload_gives_its_paragraphs_and_tables(auth_client, document_dir):
    data = files.docx_bytes(["Senior engineer", "Python, Django"], table=[["Years", "10"]])
    response = upload(auth_client, "req.docx", data, url=REQUIREMENTS)
    assert response.status_code == 201, response.content
    assert response.json()["text"] == "Senior engineer\nPython, Django\nYears\n10"
    assert Requirements.objects.count() == 1


def test_the_client_path_never_reaches_the_disk(auth_client, document_dir):
    response = upload(auth_client, "../../../etc/passwd.txt", b"root")
    assert response.status_code == 201, response.content
    assert response.json()["file_name"] == "passwd.txt"
    [stored] = files.stored_files(document_dir)
    assert stored.parent == document_dir / "resume"
    assert "passwd" not in stored.name


def test_json_text_without_a_file(auth_client, document_dir):
    response = auth_client.post(RESUMES, {"text": "Plain text resume"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["text"], body["title"], body["source"], body["file_name"]) == (
        "Plain text resume",
        "",
        "text",
        "",
    )
    assert files.stored_files(document_dir) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": "only a title"},
        {"text": "   "},
        {"text": ""},
        {"text": 12},
        {"title": "x" * 201, "text": "t"},
    ],
)
def test_json_without_a_usable_text_is_400(auth_client, body):
    assert auth_client.post(RESUMES, body, format="json").status_code == 400


def test_text_and_file_together_are_400(auth_client, document_dir):
    response = auth_client.post(
        RESUMES, {"text": "t", "file": SimpleUploadedFile("a.txt", b"a")}, format="multipart"
    )
    assert response.status_code == 400
    assert files.stored_files(document_dir) == []


# --- 415: which failure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "build", "code", "says"),
    [
        ("cv.docx", lambda: files.pdf_bytes(["a PDF"]), "content_mismatch", "PDF"),
        ("cv.pdf", lambda: files.docx_bytes(["a DOCX"]), "content_mismatch", "zip"),
        ("cv.txt", lambda: files.pdf_bytes(["a PDF"]), "content_mismatch", "PDF"),
        ("cv.pdf", lambda: b"Just some text, not a PDF", "content_mismatch", ".pdf expected"),
        ("cv.txt", lambda: "Résumé, café".encode("latin-1"), "txt_not_utf8", "UTF-8"),
        ("cv.txt", lambda: b"abc\x00def", "txt_not_text", "U+0000"),
        ("cv.pdf", lambda: files.pdf_bytes(["secret"], password="pw"), "pdf_encrypted", "encrypted"),
        ("cv.pdf", lambda: files.pdf_bytes([]), "pdf_no_text", "no extractable text"),
        ("cv.pdf", lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog", "pdf_unreadable", "damaged"),
        (
            "cv.docx",
            lambda: files.pdf_bytes(["x"])[:0] + b"PK\x03\x04 not really a zip",
            "docx_broken",
            "damaged",
        ),
        ("cv.docx", lambda: files.zip_of_many_entries(3), "docx_broken", "damaged"),
        ("cv.docx", lambda: files.lying_zip(declared=1000, text_chars=2_000_000), "docx_broken", "damaged"),
        ("cv.png", lambda: b"\x89PNG\r\n\x1a\n", "unsupported_type", ".png"),
        ("cv", lambda: b"text", "unsupported_type", "no extension"),
        ("cv.doc", lambda: files.docx_bytes(["old word"]), "unsupported_type", ".doc"),
        ("empty.txt", lambda: b"   \n", "no_text", "no text"),
        ("empty.docx", lambda: files.docx_bytes([]), "no_text", "no text"),
    ],
)
def test_unreadable_or_mismatched_uploads_are_415_saying_which(
    auth_client, document_dir, name, build, code, says
):
    detail = refused(upload(auth_client, name, build()), 415, code)
    assert says in detail
    assert not Resume.objects.exists()
    assert files.stored_files(document_dir) == []  # a refusal leaves nothing behind


def test_the_client_content_type_is_not_believed(auth_client, document_dir):
    response = upload(auth_client, "cv.pdf", b"plain words", content_type="application/pdf")
    refused(response, 415, "content_mismatch")


# --- 413: sizes ----------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated(auth_client, document_dir):
    bomb = files.zip_bomb(uncompressed=60 * 1024 * 1024)  # 60 MiB of XML in ~60 KiB
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        response = upload(auth_client, "bomb.docx", bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    detail = refused(response, 413, "docx_too_large")
    assert "expands to" in detail
    assert peak < 10 * 1024 * 1024, peak  # nothing near 60 MiB was ever inflated
    assert files.stored_files(document_dir) == []


def test_a_docx_of_too_many_entries_is_413(auth_client, settings, document_dir):
    settings.DOCX_MAX_ENTRIES = 50
    refused(upload(auth_client, "many.docx", files.zip_of_many_entries(51)), 413, "docx_too_many_entries")


def test_a_docx_whose_xml_part_alone_is_too_large_is_413(auth_client, monkeypatch, document_dir):
    from profiles import uploads

    monkeypatch.setattr(uploads, "DOCX_MAX_PART_BYTES", 2 * 1024 * 1024)
    detail = refused(
        upload(auth_client, "x.docx", files.zip_bomb(uncompressed=3 * 1024 * 1024)), 413, "docx_too_large"
    )
    assert "word/document.xml" in detail


def test_a_pdf_of_too_many_pages_is_413_before_its_text_is_read(auth_client, document_dir):
    from profiles.extraction.parsers import PDF_MAX_PAGES

    data = files.pdf_bytes([], pages=PDF_MAX_PAGES + 1)
    refused(upload(auth_client, "pages.pdf", data), 413, "pdf_too_many_pages")


def test_an_upload_of_five_mib_is_accepted(auth_client, settings, document_dir):
    """UPLOAD_MAX_BYTES is 5 MiB by default: a file just under it goes through, whatever limit the
    API sets on JSON and form bodies."""
    assert settings.UPLOAD_MAX_BYTES == 5 * 1024 * 1024
    data = files.pdf_bytes(["Big but fine"], pad_to=5 * 1024 * 1024 - 4096)
    assert 5 * 1024 * 1024 - 8192 < len(data) <= 5 * 1024 * 1024
    response = upload(auth_client, "big.pdf", data)
    assert response.status_code == 201, response.content
    assert response.json()["file_size"] == len(data)
    [stored] = files.stored_files(document_dir)
    assert stored.stat().st_size == len(data)


def test_an_upload_over_the_limit_is_413_before_the_body_is_read(auth_client, settings, document_dir):
    settings.UPLOAD_MAX_BYTES = 100_000
    response, stream = raw_multipart(auth_client, "big.txt", b"a" * 200_000, with_length=True)
    refused(response, 413, "upload_too_large")
    assert stream.bytes_read == 0  # refused from Content-Length alone
    assert files.stored_files(document_dir) == []


def test_a_file_over_the_limit_within_a_small_declared_envelope_stops_at_the_limit(
    auth_client, settings, document_dir
):
    """The byte count per chunk: a file just past the limit, its envelope within the allowance."""
    settings.UPLOAD_MAX_BYTES = 100_000
    refused(upload(auth_client, "over.txt", b"a" * 100_001), 413, "upload_too_large")
    assert upload(auth_client, "at.txt", b"a" * 100_000).status_code == 201
    assert [p.stat().st_size for p in files.stored_files(document_dir)] == [100_000]


def test_a_body_without_a_length_is_read_only_up_to_the_limit(auth_client, settings, document_dir):
    settings.UPLOAD_MAX_BYTES = 100_000
    response, stream = raw_multipart(
        auth_client, "big.txt", b"a" * 2_000_000, with_length=False, terminated=True
    )
    refused(response, 413, "upload_too_large")
    assert stream.bytes_read <= 100_000 + 64 * 1024 + 1  # the limit and the envelope's allowance, no more
    assert files.stored_files(document_dir) == []


def test_a_body_without_a_length_under_the_limit_is_accepted(auth_client, document_dir):
    response, _stream = raw_multipart(
        auth_client, "small.txt", b"chunked resume", with_length=False, terminated=True
    )
    assert response.status_code == 201, response.content
    assert response.json()["text"] == "chunked resume"


def test_a_text_over_the_limit_is_413_and_at_the_limit_is_fine(auth_client, settings, document_dir):
    settings.DOCUMENT_MAX_TEXT_CHARS = 1000
    refused(auth_client.post(RESUMES, {"text": "я" * 1001}, format="json"), 413, "text_too_long")
    assert auth_client.post(RESUMES, {"text": "я" * 1000}, format="json").status_code == 201
    refused(upload(auth_client, "long.txt", ("я" * 1001).encode()), 413, "text_too_long")
    refused(upload(auth_client, "long.docx", files.docx_bytes(["w" * 600, "w" * 600])), 413, "text_too_long")
    refused(upload(auth_client, "long.pdf", files.pdf_bytes(["p" * 90] * 12)), 413, "text_too_long")
    assert Resume.objects.count() == 1
    assert len(files.stored_files(document_dir)) == 0


def test_the_default_text_limit_is_200000_characters(settings):
    assert settings.DOCUMENT_MAX_TEXT_CHARS == 200_000
    assert os.environ.get("DOCUMENT_MAX_TEXT_CHARS") is None
