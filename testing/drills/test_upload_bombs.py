"""Drill 5: 16 PDF CPU bombs and 16 DOCX memory bombs uploaded at once, under the mixed load.

The web process never parses a file (issue 20): a PDF or DOCX is parsed by a confined child of the
worker's zygote (`profiles/extraction`), with `DOCUMENT_PARSE_SECONDS` of CPU (2 here, to keep the
drill short), `DOCUMENT_PARSE_MEMORY_MB` of memory and a wall-clock deadline, and each worker admits
`DOCUMENT_PARSE_CONCURRENCY` extractions at once plus as many waiting. What users must see while
the bombs arrive:

- every bomb answers 415 `parse_limit` (its child passed a bound and was ended) or 503 `parse_busy`
  with `Retry-After` (no slot free), or 413 from the cheap checks in front; never 201 nor a 500, and
  each answer within a bound;
- `/health/live` and a warm `/users/me` keep answering, and the reads' p99 stays within 2x of the
  quiet p99 measured just before, in the same run;
- gunicorn's workers end no bigger than they started, plus a small constant, and no extraction
  child outlives its answer.

A bomb refused as busy is sent again after its `Retry-After`, as a persistent attacker would, so that
the bombs are parsed (and stopped) by the sandbox, not only turned away at its door.

The figures are printed (`pytest -s` shows them) and every failed check is reported together.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from profiles.tests import files, hostile_files
from testing.stack import Reply, Service, running_stack

from .load import Load, percentile, upload

pytestmark = pytest.mark.drill

PASSWORD = "a drill pass phrase"
PARSE_SECONDS = 2
# The child's wall-clock deadline is 2 x CPU + 1 s (profiles/uploads.py), the web process waits 2 s
# more for its answer, and an upload may wait 2 s for a slot: about 9 s. Twice that, for a 2-core
# machine where 32 uploads, the load and the children all want the CPUs at once.
ANSWER_BOUND_SECONDS = 20
# A bomb refused busy comes back until then (from the first send); past it the drill stops sending.
BOMB_PHASE_SECONDS = 60
QUIET_SECONDS = 10
RSS_SLACK_KB = 30 * 1024
# The reads' p99 may double, with a floor: on a 2-core machine a warm /users/me's p99 is 8-20 ms,
# and one scheduler hiccup (a login's bcrypt, a checkpoint, another process) moves it by tens of ms
# between two windows of the same run. 2x alone would fail on that noise; 50 ms more than quiet
# still catches what the bombs did without the sandbox (reads queued behind parsing: seconds).
P99_FACTOR = 2.0
P99_FLOOR_SECONDS = 0.050
READ_TIMEOUT_SECONDS = 10
# The codes of the checks in front of the sandbox (size, the zip's central directory).
CHEAP_413 = {"upload_too_large", "docx_too_large", "docx_too_many_entries"}

_names = itertools.count()


@dataclass(frozen=True)
class Answer:
    kind: str
    status: int  # 0: no answer within the client's timeout, or the connection failed
    code: str
    seconds: float
    retry_after: str = ""


def _upload(service: Service, token: str, name: str, data: bytes, *, timeout: float) -> Reply:
    return upload(service, "/api/v1/resumes", token, name, data, timeout=timeout)


def _code(reply: Reply) -> str:
    try:
        return str(reply.json().get("code", ""))
    except (ValueError, AttributeError):
        return f"(not JSON: {reply.body[:80]!r})"


def _bomb(
    service: Service, kind: str, data: bytes, token: str, start: threading.Barrier, deadline: float
) -> list[Answer]:
    start.wait(timeout=30)
    answers: list[Answer] = []
    while True:
        began = time.monotonic()
        try:
            reply = _upload(service, token, f"cv.{kind}", data, timeout=ANSWER_BOUND_SECONDS + 10)
        except OSError as exc:  # a timeout or a reset: no answer at all
            answers.append(Answer(kind, 0, type(exc).__name__, time.monotonic() - began))
            return answers
        answer = Answer(
            kind, reply.status, _code(reply), time.monotonic() - began, reply.headers.get("Retry-After", "")
        )
        answers.append(answer)
        if answer.status != 503 or not answer.retry_after.isdigit():
            return answers
        pause = int(answer.retry_after) + random.uniform(0, 1)
        if time.monotonic() + pause > deadline:
            return answers
        time.sleep(pause)


# --- gunicorn's processes, from /proc ------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _workers(service: Service) -> list[int]:
    """The worker processes: children of the master. Their zygotes (and the zygotes' extraction
    children) are children of the workers, and are not counted."""
    assert service.process is not None
    return _children(service.process.process.pid)


# --- the load ------------------------------------------------------------------------------------


def _reads(tokens: list[str]):  # type: ignore[no-untyped-def]
    def step(service: Service, n: int) -> tuple[str, Reply]:
        # A read that gets no answer counts in the p99 as the time it was left waiting (a 599),
        # instead of dropping out of it: reads stalled behind parsing must raise the p99.
        try:
            reply = service.request(
                "GET", "/api/v1/users/me", token=tokens[n % len(tokens)], timeout=READ_TIMEOUT_SECONDS
            )
        except OSError as exc:
            reply = Reply(599, {}, f"no answer: {type(exc).__name__}".encode())
        return "/users/me", reply

    return step


def _mixed(token: str):  # type: ignore[no-untyped-def]
    """Logins and registrations (a bcrypt hash each: CPU the bombs compete with) and a list read."""

    def step(service: Service, n: int) -> tuple[str, Reply]:
        kind = n % 3
        if kind == 0:
            return "/auth/login", service.request(
                "POST", "/api/v1/auth/login", {"username": "steady", "password": PASSWORD}
            )
        if kind == 1:
            name = f"newcomer{next(_names)}"
            return "/auth/register", service.request(
                "POST",
                "/api/v1/auth/register",
                {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
            )
        return "/notifications", service.request("GET", "/api/v1/notifications", token=token)

    return step


def _live(service: Service, n: int) -> tuple[str, Reply]:
    return "/health/live", service.request("GET", "/health/live", timeout=2)


def _warm_uploads(service: Service, token: str) -> None:
    """A few ordinary uploads, two at a time so that both workers serve some: the RSS measured
    before the bombs then holds what serving an upload loads, as a serving worker's does."""
    pdf = files.pdf_bytes(["Ada Lovelace", "Analyst of the Analytical Engine"])
    for _ in range(4):
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(lambda _: _upload(service, token, "cv.pdf", pdf, timeout=30), range(2)))
        assert all(reply.status == 201 for reply in replies), [(r.status, r.body[:200]) for r in replies]
    workers = _workers(service)
    # gunicorn.conf.py starts each worker's zygote in post_worker_init.
    assert all(_children(pid) for pid in workers), {pid: _children(pid) for pid in workers}


def test_upload_bombs_under_load(stack_folder):
    pdf_bomb = hostile_files.pdf_shared_stream_bomb()
    docx_bomb = hostile_files.docx_empty_paragraphs()
    with running_stack(stack_folder) as stack:
        service = stack.gunicorn(
            workers=2,
            DOCUMENT_PARSE_SECONDS=str(PARSE_SECONDS),
            DOCUMENT_STORAGE_DIR=str(stack.folder / "documents"),  # not the checkout's media/
            # Each bomb user sends 4 bombs and comes back after every 503: the throttle must not be
            # what answers them.
            THROTTLE_UPLOAD_USER="100000/hour",
        )
        readers = [service.register_and_login(f"reader{i}")["access"] for i in range(4)]
        bombers = [service.register_and_login(f"bomber{i}")["access"] for i in range(8)]
        service.register_and_login("steady")  # logs in again and again: its early sessions end
        uploader = service.register_and_login("uploader")["access"]
        for token in readers * 4:  # warm: these reads come from the cache
            assert service.request("GET", "/api/v1/users/me", token=token).status == 200
        _warm_uploads(service, uploader)
        workers = _workers(service)

        problems: list[str] = []
        with (
            Load(service, _reads(readers), threads=2, pause=0.05) as reads,
            Load(service, _mixed(uploader), threads=1, pause=0.3) as mixed,
            Load(service, _live, threads=1, pause=0.2) as live,
        ):
            time.sleep(2.0)  # the load settles
            quiet_from = time.monotonic()
            time.sleep(QUIET_SECONDS)
            quiet_until = time.monotonic()
            rss_before = {pid: _rss_kb(pid) for pid in workers}
            cpu_before = {pid: _cpu_seconds(pid) for pid in workers}

            jobs = [("pdf", pdf_bomb)] * 16 + [("docx", docx_bomb)] * 16
            start = threading.Barrier(len(jobs))
            bombs_from = time.monotonic()
            deadline = bombs_from + BOMB_PHASE_SECONDS
            with ThreadPoolExecutor(len(jobs)) as pool:
                futures = [
                    pool.submit(_bomb, service, kind, data, bombers[i % len(bombers)], start, deadline)
                    for i, (kind, data) in enumerate(jobs)
                ]
                answers = [answer for future in futures for answer in future.result()]
            bombs_until = time.monotonic()

            time.sleep(3.0)  # the last children's ends, and any memory the workers give back
            rss_after = {pid: _rss_kb(pid) for pid in workers if Path(f"/proc/{pid}").exists()}
            cpu_after = {pid: _cpu_seconds(pid) for pid in rss_after}
            leftovers = {
                zygote: _children(zygote)
                for pid in rss_after
                for zygote in _children(pid)
                if _children(zygote)
            }

        # -- the figures ---------------------------------------------------------------------------
        quiet = reads.latencies("/users/me", quiet_from, quiet_until)
        during = reads.latencies("/users/me", bombs_from, bombs_until)
        quiet_p99, during_p99 = percentile(quiet, 0.99), percentile(during, 0.99)
        p99_limit = max(P99_FACTOR * quiet_p99, quiet_p99 + P99_FLOOR_SECONDS)
        live_during = live.latencies("/health/live", bombs_from, bombs_until)
        by_status = Counter((a.kind, a.status, a.code) for a in answers)
        first_send = Counter((a.kind, a.status, a.code) for a in (f.result()[0] for f in futures))
        slowest = max((a.seconds for a in answers), default=0.0)
        figures = {
            "bomb_phase_s": round(bombs_until - bombs_from, 1),
            "answers": {f"{k} {s} {c}": n for (k, s, c), n in sorted(by_status.items())},
            "first_answers": {f"{k} {s} {c}": n for (k, s, c), n in sorted(first_send.items())},
            "slowest_answer_s": round(slowest, 2),
            "reads_quiet": {"n": len(quiet), "p50_ms": _ms(percentile(quiet, 0.5)), "p99_ms": _ms(quiet_p99)},
            "reads_bombs": {
                "n": len(during),
                "p50_ms": _ms(percentile(during, 0.5)),
                "p99_ms": _ms(during_p99),
                "limit_ms": _ms(p99_limit),
            },
            "live_bombs": {"n": len(live_during), "max_ms": _ms(max(live_during, default=float("nan")))},
            "rss_kb": {pid: [rss_before[pid], rss_after.get(pid)] for pid in workers},
            "worker_cpu_s_during_bombs": {
                pid: round(cpu_after[pid] - cpu_before[pid], 2) for pid in cpu_after
            },
            "load": {
                f"{path} {status}": n
                for load in (reads, mixed, live)
                for (path, status), n in load.statuses.items()
            },
        }
        print("\nupload bombs drill:", json.dumps(figures, indent=2, default=str))

        # -- the checks ----------------------------------------------------------------------------
        wrong = Counter(
            (answer.kind, answer.status, answer.code)
            for answer in answers
            if not (
                (answer.status == 415 and answer.code == "parse_limit")
                or (answer.status == 503 and answer.code == "parse_busy" and answer.retry_after.isdigit())
                or (answer.status == 413 and answer.code in CHEAP_413)
            )
        )
        for (kind, status, code), n in sorted(wrong.items()):
            problems.append(f"{n} {kind} bomb answer(s) {status} {code!r} (0: none within the timeout)")
        if slowest > ANSWER_BOUND_SECONDS:
            problems.append(f"a bomb's answer took {slowest:.1f} s (bound {ANSWER_BOUND_SECONDS} s)")
        for kind in ("pdf", "docx"):
            if not any(a.kind == kind and a.status == 415 for a in answers):
                problems.append(f"no {kind} bomb reached the sandbox's limit (415 parse_limit)")
        if not during or during_p99 > p99_limit:
            problems.append(
                f"reads' p99 during the bombs {_ms(during_p99)} ms over {_ms(p99_limit)} ms "
                f"(quiet {_ms(quiet_p99)} ms; {len(during)} reads)"
            )
        for name, load in (("reads", reads), ("mixed load", mixed), ("/health/live", live)):
            if load.errors:
                problems.append(f"{name}: {len(load.errors)} errors, the first {load.errors[:3]}")
        if reads.count(lambda status: status != 200) or live.count(lambda status: status != 200):
            problems.append(f"a read or probe was not 200: {reads.statuses} {live.statuses}")
        if mixed.count(lambda status: status >= 500):
            problems.append(f"the mixed load saw 5xx: {mixed.statuses}")
        if not live_during:
            problems.append("no /health/live probe answered during the bombs")
        if set(rss_after) != set(workers) or _workers(service) != workers:
            problems.append(f"the workers changed (a worker died?): {workers} -> {_workers(service)}")
        for pid, before in rss_before.items():
            after = rss_after.get(pid)
            if after is not None and after > before + RSS_SLACK_KB:
                problems.append(
                    f"worker {pid} grew from {before // 1024} MB to {after // 1024} MB "
                    f"(allowed {RSS_SLACK_KB // 1024} MB)"
                )
        if leftovers:
            problems.append(f"extraction children outlived their answers: {leftovers}")

        # The service still reads an ordinary file once the bombs are gone.
        for name, data in (
            ("cv.pdf", files.pdf_bytes(["Ada Lovelace"])),
            ("cv.docx", files.docx_bytes(["Ada Lovelace"])),
        ):
            try:
                reply = _upload(service, uploader, name, data, timeout=30)
            except OSError as exc:
                problems.append(f"an ordinary {name} after the bombs: {type(exc).__name__}")
                continue
            if reply.status != 201:
                problems.append(f"an ordinary {name} after the bombs: {reply.status} {reply.body[:200]!r}")

        assert not problems, "\n".join(problems)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
