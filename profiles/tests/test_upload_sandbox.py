"""Hostile files (API.md → "Resumes, requirements, processing"; issue 20): whatever a file's bytes
send the parser into, the upload answers within its bounds, and the web process (this test
process, which serves the test client's requests) is not what pays.

The corpus is built by `hostile_files.py`. The bounds are set low here (`DOCUMENT_PARSE_SECONDS`
1-2) so that each case answers in a few seconds; the defaults are what API.md says.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer_for
from profiles.extraction import sandbox
from profiles.models import Resume

from . import files, hostile_files
from .test_uploads import RESUMES, refused, upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@dataclass
class Cost:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rss_growth: int = 0


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process, no child
    return usage.ru_utime + usage.ru_stime


@contextmanager
def web_process_cost() -> Iterator[Cost]:
    cost = Cost()
    started, cpu, rss = time.monotonic(), _cpu(), _rss()
    yield cost
    cost.seconds = time.monotonic() - started
    cost.cpu_seconds = _cpu() - cpu
    cost.rss_growth = _rss() - rss


@pytest.fixture
def tight_bounds(settings):
    settings.DOCUMENT_PARSE_SECONDS = 1
    settings.DOCUMENT_PARSE_MEMORY_MB = 128
    settings.THROTTLE_UPLOAD_USER = "1000/hour"
    sandbox.warm_up()  # the zygote's start is not the file's cost


# Each case: the file, and the answers it may get. A bomb's only answer is the bound's; a file
# whose parsing stays within the bounds may be read (201) or refused as damaged.
CORPUS = [
    pytest.param(
        "cpu-bomb.pdf",
        hostile_files.pdf_shared_stream_bomb,
        {(415, "parse_limit")},
        id="pdf-1000-pages-one-4MB-stream",
    ),
    pytest.param(
        "small-cpu-bomb.pdf",
        lambda: hostile_files.pdf_shared_stream_bomb(pages=20, stream_bytes=1024 * 1024),
        {(415, "parse_limit")},
        id="pdf-6KB-20-pages-one-1MB-stream",
    ),
    pytest.param(
        "nested.pdf",
        hostile_files.pdf_nested_resources,
        {(415, "parse_limit"), (415, "pdf_no_text"), (201, None)},
        id="pdf-20000-nested-dictionaries",
    ),
    pytest.param(
        "cyclic.pdf",
        hostile_files.pdf_cyclic_page_tree,
        {(415, "pdf_unreadable"), (415, "parse_limit")},
        id="pdf-cyclic-page-tree",
    ),
    pytest.param(
        "paragraphs.docx",
        hostile_files.docx_empty_paragraphs,
        {(415, "parse_limit")},
        id="docx-16MiB-of-empty-paragraphs",
    ),
    pytest.param(
        "header.docx",
        lambda: hostile_files.docx_header_part(xml_bytes=15 * 1024 * 1024),
        {(415, "parse_limit")},
        id="docx-15MB-header-named-bin",
    ),
    pytest.param(
        "types.docx",
        hostile_files.docx_huge_content_types,
        {(415, "parse_limit"), (415, "docx_broken")},
        id="docx-15MB-content-types",
    ),
]


@pytest.mark.parametrize(("name", "build", "answers"), CORPUS)
def test_a_hostile_file_gets_its_answer_within_the_bounds_and_the_web_process_pays_nothing(
    auth_client, document_dir, tight_bounds, name, build, answers
):
    data = build()
    assert len(data) < 200_000  # each attack is a small upload
    with web_process_cost() as cost:
        response = upload(auth_client, name, data)
    body = response.json()
    assert (response.status_code, body.get("code")) in answers, body
    # 1 s of CPU, a wall deadline of 2 x 1 + 1 s and the parent's grace of 2 s (5 s), plus the
    # request's own time on a busy machine.
    assert cost.seconds < 8, cost
    # The parsing ran elsewhere: this process spent what a request costs, not the parse's CPU,
    # and its memory did not grow with what the parser built (a gigabyte, in-process).
    assert cost.cpu_seconds < 0.5, cost
    assert cost.rss_growth < 20 * 1024 * 1024, cost
    assert files.stored_files(document_dir) == [] or response.status_code == 201


def test_a_parse_limit_says_so_in_plain_words(auth_client, document_dir, tight_bounds):
    detail = refused(
        upload(auth_client, "bomb.pdf", hostile_files.pdf_shared_stream_bomb()), 415, "parse_limit"
    )
    assert "within the limits" in detail
    assert not Resume.objects.exists()
    assert files.stored_files(document_dir) == []


def test_a_docx_part_is_capped_by_its_inflated_size_whatever_its_name(auth_client, document_dir):
    # 48 MB of XML under word/h1.bin, a name that a cap on *.xml parts skipped: refused from the
    # zip's central directory, before the sandbox, before anything is inflated.
    detail = refused(upload(auth_client, "h.docx", hostile_files.docx_header_part()), 413, "docx_too_large")
    assert "word/h1.bin" in detail


def test_an_ordinary_pdf_and_docx_still_give_their_text(auth_client, document_dir, tight_bounds):
    pdf = upload(auth_client, "cv.pdf", files.pdf_bytes(["Senior engineer", "Python, Django"]))
    assert pdf.status_code == 201, pdf.content
    assert "Python, Django" in pdf.json()["text"]
    docx = upload(auth_client, "cv.docx", files.docx_bytes(["Team lead", "Kafka"]))
    assert docx.status_code == 201, docx.content
    assert "Kafka" in docx.json()["text"]


# --- logging: bounded, and nothing from a file reaches a log line unescaped ------------------------

FORGED = "CRITICAL accounts.security [forged-rid] admin password changed by mallory"


def test_a_files_warnings_are_one_escaped_line_however_many(auth_client, document_dir, tight_bounds, caplog):
    caplog.set_level(logging.DEBUG)
    response = upload(auth_client, "forged.pdf", hostile_files.pdf_forged_log_line(FORGED))
    assert response.status_code == 201, response.content
    messages = [record.getMessage() for record in caplog.records]
    warned = [message for message in messages if "parser warned" in message]
    assert len(warned) == 1, messages
    assert "mallory" in warned[0]  # the warning is there, escaped
    for message in messages:
        assert "\n" not in message, message
        assert "\r" not in message, message


def test_thousands_of_parser_warnings_are_a_few_log_lines(auth_client, document_dir, tight_bounds, caplog):
    caplog.set_level(logging.DEBUG)
    upload(auth_client, "nested.pdf", hostile_files.pdf_nested_resources())
    from_the_upload = [r for r in caplog.records if r.name.startswith(("pypdf", "profiles"))]
    assert len(from_the_upload) <= 3, [r.getMessage()[:100] for r in from_the_upload]
    warned = [r.getMessage() for r in from_the_upload if "parser warned" in r.getMessage()]
    assert warned
    assert int(warned[0].split("warned ")[1].split(" ")[0]) > 1000


# --- the sandbox itself: each bound ends the child, and the child holds nothing ---------------------


def _limits(**overrides: int) -> sandbox.Limits:
    values = {"cpu_seconds": 10, "memory_bytes": 256 * 1024 * 1024, "max_chars": 200_000, "wall_seconds": 30}
    values.update(overrides)
    return sandbox.Limits(**values)


def _reason(data: bytes, kind: str, limits: sandbox.Limits) -> str:
    with pytest.raises(sandbox.ParseLimit) as over:
        sandbox.extract(kind, data, limits, slots=2, wait_seconds=1)
    return over.value.reason


def test_the_cpu_bound_ends_the_child():
    # One CPU second, however long the niced child waits for it on a busy machine: the reason
    # says which bound ended it (the wall clock, 30 s here, did not).
    started = time.monotonic()
    assert _reason(hostile_files.pdf_shared_stream_bomb(), "pdf", _limits(cpu_seconds=1)) == "cpu"
    assert time.monotonic() - started < 30


def test_the_memory_bound_ends_the_child():
    limits = _limits(memory_bytes=64 * 1024 * 1024)
    assert _reason(hostile_files.docx_empty_paragraphs(), "docx", limits) == "memory"


def test_the_wall_clock_bound_ends_a_child_that_has_cpu_seconds_left():
    started = time.monotonic()
    assert (
        _reason(hostile_files.pdf_shared_stream_bomb(), "pdf", _limits(cpu_seconds=30, wall_seconds=1))
        == "time"
    )
    # The child's alarm at 1 s, or the parent's own deadline 2 s later if the child never got going.
    assert time.monotonic() - started < 6


def test_the_zygote_has_no_environment_and_comes_back_when_killed():
    sandbox.warm_up()
    process = sandbox._zygote._process
    assert process is not None
    with open(f"/proc/{process.pid}/environ", "rb") as environ:
        assert environ.read() == b""  # no SECRET_KEY, DATABASE_URL, ... for the parsers
    process.kill()
    process.wait()
    text = sandbox.extract("pdf", files.pdf_bytes(["after a restart"]), _limits(), slots=2, wait_seconds=1)
    assert "after a restart" in text


def test_past_the_slots_and_the_queue_an_extraction_is_refused_at_once():
    admission = sandbox._Admission()
    assert admission.enter(1, wait_seconds=0)
    waiter_result: list[bool] = []
    waiter = threading.Thread(target=lambda: waiter_result.append(admission.enter(1, wait_seconds=5)))
    waiter.start()
    time.sleep(0.2)  # the waiter is queued
    started = time.monotonic()
    assert not admission.enter(1, wait_seconds=5)  # the queue is full: no wait at all
    assert time.monotonic() - started < 0.1
    admission.leave()
    waiter.join(2)
    assert waiter_result == [True]  # the queued one got the freed slot
    admission.leave()


def test_no_free_slot_is_a_503_with_retry_after(auth_client, document_dir, monkeypatch):
    def busy(*args, **kwargs):
        raise sandbox.Busy()

    monkeypatch.setattr(sandbox, "extract", busy)
    response = upload(auth_client, "cv.pdf", files.pdf_bytes(["x"]))
    refused(response, 503, "parse_busy")
    assert int(response["Retry-After"]) > 0


# --- .txt: text, not a binary renamed -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        hostile_files.ELF_WITHOUT_NUL,
        b"plain words \x1b[31mred\x1b[0m",  # a terminal escape
        b"form\x0cfeed",
        "C1 \u0085 control".encode(),
        b"delete \x7f",
    ],
    ids=["elf", "escape", "form-feed", "c1", "del"],
)
def test_a_txt_with_control_characters_is_415_txt_not_text(auth_client, document_dir, data):
    detail = refused(upload(auth_client, "cv.txt", data), 415, "txt_not_text")
    assert "control character" in detail


def test_tab_newline_and_carriage_return_are_text(auth_client, document_dir):
    response = upload(auth_client, "cv.txt", b"name:\tAda\r\nrole:\tengineer\n")
    assert response.status_code == 201, response.content


# --- the upload throttle ------------------------------------------------------------------------


def test_creating_documents_is_throttled_per_user_before_the_body_is_read(
    auth_client, document_dir, settings, monkeypatch
):
    from profiles import views

    settings.THROTTLE_UPLOAD_USER = "3/hour"
    assert upload(auth_client, "a.txt", b"one").status_code == 201
    assert auth_client.post(RESUMES, {"text": "two"}, format="json").status_code == 201
    assert upload(auth_client, "c.txt", b"three", url="/api/v1/requirements").status_code == 201

    def never(*args, **kwargs):
        raise AssertionError("the body was read")

    monkeypatch.setattr(views.documents, "prepare_upload", never)
    response = upload(auth_client, "d.pdf", files.pdf_bytes(["four"]))
    refused(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 3600
    # Reads are not counted, and another user has a limit of their own.
    assert auth_client.get(RESUMES).status_code == 200
    monkeypatch.undo()
    settings.THROTTLE_UPLOAD_USER = "3/hour"
    assert upload(bearer_for(UserFactory()), "e.txt", b"five").status_code == 201


def test_the_upload_throttle_refuses_when_its_cache_fails(auth_client, document_dir, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(SimpleRateThrottle.cache, "get", broken)
    response = upload(auth_client, "a.txt", b"text")
    refused(response, 503, "throttle_unavailable")
    assert response["Retry-After"]


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x04\x95 a pickle, never unpickled",
        b'{"text": 5, "warnings": 0, "samples": []}',
        b'{"refused": [500, "x", "y"], "warnings": 0, "samples": []}',
        b'{"text": "t", "warnings": "many", "samples": []}',
        b'["text"]',
    ],
)
def test_a_reply_a_child_of_ours_would_not_send_is_a_crash(raw):
    """The child ran a stranger's file: what it answers is JSON, checked; nothing is unpickled."""
    assert sandbox._checked_reply(raw) == {"limit": "crashed", "warnings": 0, "samples": []}


def test_a_childs_warning_samples_are_cut_to_the_bound():
    raw = b'{"text": "t", "warnings": 9, "samples": ["%s", "b", "c", "d", "e"]}' % (b"x" * 10_000)
    reply = sandbox._checked_reply(raw)
    assert [len(sample) for sample in reply["samples"]] == [200, 1, 1]
