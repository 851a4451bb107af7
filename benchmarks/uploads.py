#!/usr/bin/env python3
"""Upload benchmark: 5 MiB PDF and DOCX uploads through the service as it ships, and the sandbox's own cost.

    .venv/bin/python benchmarks/uploads.py                      # ~1 min; summary then JSON on stdout
    .venv/bin/python benchmarks/uploads.py --rounds 5 --uploads 20 --repetitions 50

Two measurements, both in one run, PDF and DOCX side by side:

1. **Through the service**: PostgreSQL, Redis and gunicorn with `gunicorn.conf.py` (2 workers x 8
   threads, as `make serve` and the Dockerfile run it; testing/stack.py), `POST /api/v1/resumes` over
   loopback HTTP: authentication, the multipart parser behind the size guard, the type check, the
   zip's central directory, the text extracted by the sandbox, the storage, the row and its event.
   Per round, `--uploads` sequential uploads of each kind (one client: the per-upload latency and
   uploads/s), then as many again from `--clients` clients at once (uploads/s with both workers
   busy). The rounds alternate PDF and DOCX, so that the machine's noise falls on both alike.
2. **The sandbox's cost per file**: on the same bytes, in this process, `sandbox.extract` (a fork of
   the zygote, the bytes to the child and its text back) against `parsers.PARSERS[kind]` called
   directly, interleaved one by one, `--repetitions` times; the medians' difference is the overhead,
   also given as a share of an ordinary upload's median latency from (1).

The files are built by `profiles/tests/files.py`: a one-page text PDF padded with a 5 MiB
attachment, a DOCX padded with a 5 MiB stored part (both as real clients send them). Progress on
stderr. The servers' folder is removed at the end (BENCH_KEEP=1 keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.drills.load import upload  # noqa: E402  (after the path is set)
from testing.stack import Service, running_stack  # noqa: E402

SIZE = 5 * 1024 * 1024 - 16 * 1024  # just under UPLOAD_MAX_BYTES with the multipart envelope
KINDS = ("pdf", "docx")
LINES = ["Ada Lovelace", "Analyst of the Analytical Engine"]
# The settings' defaults (config/settings.py), as profiles/uploads.py turns them into limits.
PARSE_SECONDS = 10
PARSE_MEMORY_MB = 256
MAX_TEXT_CHARS = 200_000
PARSE_SLOTS = 2
#: The last round's figures, uploads/s with the text parsed in the web process (README, 2026-11-30).
IN_PROCESS_BEFORE = {"pdf": (12.6, 15.9), "docx": (8.5, 16.1)}


def log(message: str) -> None:
    print(f"[uploads] {message}", file=sys.stderr, flush=True)


def build(kind: str) -> bytes:
    from profiles.tests import files

    if kind == "pdf":
        return files.pdf_bytes(LINES, pad_to=SIZE)
    return files.docx_bytes(LINES, pad_to=SIZE)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _p(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


# --- 1. through the service ----------------------------------------------------------------------


def _send(service: Service, token: str, kind: str, data: bytes) -> float:
    started = time.perf_counter()
    reply = upload(service, "/api/v1/resumes", token, f"cv.{kind}", data, timeout=60)
    seconds = time.perf_counter() - started
    if reply.status != 201:
        raise RuntimeError(f"{kind} upload: {reply.status} {reply.body[:300]!r}")
    return seconds


def sequential(service: Service, token: str, kind: str, data: bytes, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    latencies = [_send(service, token, kind, data) for _ in range(count)]
    elapsed = time.perf_counter() - started
    return {"uploads_per_s": count / elapsed, "latencies": latencies}


def concurrent(service: Service, tokens: list[str], kind: str, data: bytes, count: int) -> float:
    """Uploads/s of `count` uploads from len(tokens) clients at once (one account each)."""
    left = iter(range(count))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client(token: str) -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            try:
                _send(service, token, kind, data)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=client, args=(token,)) for token in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{kind} concurrent uploads: {errors[0]}")
    return count / elapsed


def _zygotes_rss_mib(service: Service) -> list[float]:
    """The RSS of each worker's zygote (the workers are the master's children, the zygotes theirs)."""
    assert service.process is not None

    def children(pid: int) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            if int(text[text.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(stat.parent.name))
        return found

    sizes = []
    for worker in children(service.process.process.pid):
        for zygote in children(worker):
            for line in Path(f"/proc/{zygote}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(round(int(line.split()[1]) / 1024, 1))
    return sizes


def through_service(files: dict[str, bytes], args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    folder.chmod(0o755)  # PostgreSQL's data folder inside must be reachable by the postgres user
    try:
        return _through_service(folder, files, args)
    finally:
        # The database and the stored files: ~700 MB a run.
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


def _through_service(folder: Path, files: dict[str, bytes], args: argparse.Namespace) -> dict[str, Any]:
    with running_stack(folder / "stack", extra_env={"DEBUG": "false"}) as stack:
        service = stack.gunicorn(
            workers=2,
            THROTTLE_UPLOAD_USER="1000000/hour",  # the benchmark's uploads, not the throttle
            DOCUMENT_STORAGE_DIR=str(folder / "documents"),
            GUNICORN_ACCESS_LOG="",
        )
        log(f"gunicorn ready on {service.base} (gunicorn.conf.py: 2 workers x GUNICORN_THREADS)")
        tokens = [service.register_and_login(f"bench{i}")["access"] for i in range(args.clients)]
        for kind in KINDS:  # warm: both workers' zygotes, imports, connections
            for _ in range(4):
                _send(service, tokens[0], kind, files[kind])
        zygotes = _zygotes_rss_mib(service)
        results: dict[str, dict[str, list[Any]]] = {
            kind: {"sequential_per_s": [], "latencies": [], "concurrent_per_s": []} for kind in KINDS
        }
        for round_ in range(args.rounds):
            order = KINDS if round_ % 2 == 0 else KINDS[::-1]
            for kind in order:
                one = sequential(service, tokens[0], kind, files[kind], args.uploads)
                many = concurrent(service, tokens, kind, files[kind], args.uploads)
                results[kind]["sequential_per_s"].append(one["uploads_per_s"])
                results[kind]["latencies"].extend(one["latencies"])
                results[kind]["concurrent_per_s"].append(many)
                log(
                    f"round {round_ + 1} {kind}: {one['uploads_per_s']:.1f} uploads/s one at a time "
                    f"(p50 {_ms(statistics.median(one['latencies']))} ms), "
                    f"{many:.1f} uploads/s from {args.clients} clients"
                )
    out: dict[str, Any] = {"zygote_rss_mib": zygotes}
    for kind, figures in results.items():
        latencies = figures["latencies"]
        out[kind] = {
            "file_bytes": len(files[kind]),
            "uploads_per_s_one_client": _range(figures["sequential_per_s"]),
            f"uploads_per_s_{args.clients}_clients": _range(figures["concurrent_per_s"]),
            "latency_ms": {
                "p50": _ms(statistics.median(latencies)),
                "p90": _ms(_p(latencies, 0.9)),
                "max": _ms(max(latencies)),
                "n": len(latencies),
            },
        }
    return out


def _range(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


# --- 2. the sandbox against parsing in-process ---------------------------------------------------


def sandbox_cost(files: dict[str, bytes], repetitions: int) -> dict[str, Any]:
    from profiles.extraction import parsers, sandbox

    limits = sandbox.Limits(
        cpu_seconds=PARSE_SECONDS,
        memory_bytes=PARSE_MEMORY_MB * 1024 * 1024,
        max_chars=MAX_TEXT_CHARS,
        wall_seconds=2 * PARSE_SECONDS + 1,
    )
    sandbox.warm_up()
    out: dict[str, Any] = {}
    for kind in KINDS:
        data = files[kind]

        def in_sandbox(kind: str = kind, data: bytes = data) -> str:
            return sandbox.extract(kind, data, limits, slots=PARSE_SLOTS, wait_seconds=2)

        def in_process(kind: str = kind, data: bytes = data) -> str:
            return parsers.PARSERS[kind](data, MAX_TEXT_CHARS)

        if in_sandbox() != in_process():
            raise RuntimeError(f"{kind}: the sandbox's text differs from the parser's")
        for _ in range(3):  # warm
            in_sandbox()
            in_process()
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(repetitions):  # interleaved, so that the machine's noise falls on both
            for func, samples in zip((in_sandbox, in_process), times, strict=True):
                started = time.perf_counter()
                func()
                samples.append(time.perf_counter() - started)
        sandboxed, direct = statistics.median(times[0]), statistics.median(times[1])
        out[kind] = {
            "sandbox_ms": _ms(sandboxed),
            "in_process_ms": _ms(direct),
            "overhead_ms": round((sandboxed - direct) * 1000, 2),
            "sandbox_ms_p90": _ms(_p(times[0], 0.9)),
            "in_process_ms_p90": _ms(_p(times[1], 0.9)),
            "repetitions": repetitions,
        }
        log(f"{kind}: sandbox {out[kind]['sandbox_ms']} ms, in-process {out[kind]['in_process_ms']} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=10, help="uploads of each kind per round and way")
    parser.add_argument("--clients", type=int, default=4, help="clients at once in the concurrent way")
    parser.add_argument("--repetitions", type=int, default=30, help="extractions of each kind and way")
    parser.add_argument(
        "--sandbox-only", action="store_true", help="only (2), the sandbox against in-process: no servers"
    )
    args = parser.parse_args()

    files = {kind: build(kind) for kind in KINDS}
    log(f"files: {', '.join(f'{kind} {len(data)} bytes' for kind, data in files.items())}")
    if args.sandbox_only:
        cost = sandbox_cost(files, args.repetitions)
        print(json.dumps({"machine": _machine(), "sandbox_cost": cost}, indent=2))
        return
    service = through_service(files, args)
    # After the servers are gone: the extraction timings on a machine with nothing else of ours.
    cost = sandbox_cost(files, args.repetitions)

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {_loadavg()}")
    print("through gunicorn (gunicorn.conf.py, 2 workers), PostgreSQL + Redis, 5 MiB files:")
    for kind in KINDS:
        figures = service[kind]
        one, many = figures["uploads_per_s_one_client"], figures[f"uploads_per_s_{args.clients}_clients"]
        low, high = IN_PROCESS_BEFORE[kind]
        print(
            f"  {kind:4}: one client {one['median']} uploads/s ({one['min']}-{one['max']}), "
            f"latency p50 {figures['latency_ms']['p50']} ms p90 {figures['latency_ms']['p90']} ms; "
            f"{args.clients} clients {many['median']} uploads/s ({many['min']}-{many['max']}); "
            f"last round in-process: {low}-{high} uploads/s"
        )
    print(f"  zygote RSS per worker: {service['zygote_rss_mib']} MiB")
    print("the sandbox's cost per file (median of interleaved runs on the same bytes):")
    for kind in KINDS:
        figures = cost[kind]
        share = 100 * figures["overhead_ms"] / service[kind]["latency_ms"]["p50"]
        figures["overhead_pct_of_upload"] = round(share, 1)
        print(
            f"  {kind:4}: sandbox {figures['sandbox_ms']} ms, in-process {figures['in_process_ms']} ms, "
            f"overhead {figures['overhead_ms']} ms = {share:.1f} % of an upload's p50 "
            f"({service[kind]['latency_ms']['p50']} ms)"
        )
    print(
        json.dumps(
            {
                "machine": _machine(),
                "through_service": service,
                "sandbox_cost": cost,
            },
            indent=2,
        )
    )


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load": _loadavg()}


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
