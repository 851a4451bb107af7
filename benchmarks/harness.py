"""What `hot_path.py` needs around the measurement: HTTP, gunicorn, wrk, CPU accounting, the machine's load.

Standard library only (plus Debian's `wrk`): it runs before Django is set up, and
for the stock project, which shares nothing with the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testing.stack import free_port

HERE = Path(__file__).resolve().parent
LUA = HERE / "tokens.lua"


def log(message: str) -> None:
    print(f"[hot_path] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def fail(message: str) -> None:
    raise BenchError(message)


def redact(url: str) -> str:
    """A URL without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def uptime() -> str:
    """`uptime`'s load averages: how busy the shared machine was."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "unknown"
    return f"load average: {one}, {five}, {fifteen}"


# --- HTTP --------------------------------------------------------------------


def http(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One request to a loopback server; (status, JSON body or text)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"only loopback http URLs are measured: {url}")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:200].decode(errors="replace")


# --- Servers -----------------------------------------------------------------


@dataclass
class Gunicorn:
    """One gunicorn of a WSGI module on a loopback port, in its own process group.

    `conf=True` starts it as `make serve` and the image do, `gunicorn -c gunicorn.conf.py
    config.wsgi` from the checkout (its workers, threads, access log, hooks and metrics folder),
    with only the address given (`GUNICORN_BIND`); `flags` then override it on the command line
    (the old tuned variant). `conf=False`: `flags` alone, from a folder without a gunicorn.conf.py
    (the anchors: 2 sync workers, no access log).
    """

    name: str
    wsgi: str
    chdir: Path
    env: dict[str, str]
    log_dir: Path
    health_path: str
    conf: bool = False
    flags: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.conf:
            return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.wsgi, *self.flags]
        return [
            sys.executable, "-m", "gunicorn", self.wsgi,
            "--bind", f"127.0.0.1:{self.port}", "--timeout", "30", "--graceful-timeout", "5",
            "--log-level", "warning", *self.flags,
        ]  # fmt: skip

    def start(self) -> None:
        self.port = free_port()
        self.log_path = self.log_dir / f"gunicorn-{self.name}.log"
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.chdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"gunicorn ({self.name}) exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http("GET", self.base + self.health_path, timeout=2)[0] == 200:
                    log(f"gunicorn {self.name} ({self.wsgi}) ready on {self.base}")
                    return
            time.sleep(0.2)
        fail(f"gunicorn ({self.name}) did not answer {self.health_path} within 90 s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


# --- Load --------------------------------------------------------------------


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (result.stdout or result.stderr).split("Copyright")[0].strip()


def run_wrk(url: str, tokens_file: Path, duration: int, connections: int, threads: int) -> dict[str, Any]:
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
        "--timeout", "5s", "--latency", "-s", str(LUA), url,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
        env={**os.environ, "BENCH_TOKENS": str(tokens_file)},
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line.removeprefix("BENCH_JSON ")))
    fail(f"wrk gave no result (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    raise AssertionError  # unreachable


SERVICE_PROCESSES = ("postgres", "redis-server")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks so far (Linux /proc): the whole machine and the processes that matter here."""

    busy: int  # every CPU, user + nice + system + irq + softirq
    gunicorn: dict[int, int]  # pid -> ticks, the processes of the measured gunicorn's group
    services: dict[int, int]  # pid -> ticks, every postgres and redis-server process
    children_s: float  # reaped children of this script (wrk), in seconds
    switches: dict[int, tuple[int, int]]  # tid -> (voluntary, involuntary), every thread of the group


def _context_switches(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread's context switches so far (a process's own status counts its main thread only)."""
    found: dict[int, tuple[int, int]] = {}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        counts = dict(line.split(":\t", 1) for line in lines if "ctxt_switches" in line)
        found[int(status.parent.name)] = (
            int(counts.get("voluntary_ctxt_switches", 0)),
            int(counts.get("nonvoluntary_ctxt_switches", 0)),
        )
    return found


def cpu_snapshot(pgid: int | None) -> CpuSnapshot | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    gunicorn: dict[int, int] = {}
    services: dict[int, int] = {}
    switches: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        fields = text[text.rfind(")") + 1 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if pgid is not None and int(fields[2]) == pgid:
            gunicorn[int(stat.parent.name)] = ticks
            switches.update(_context_switches(int(stat.parent.name)))
        elif comm in SERVICE_PROCESSES:
            services[int(stat.parent.name)] = ticks
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return CpuSnapshot(busy, gunicorn, services, usage.ru_utime + usage.ru_stime, switches)


def _spent(before: dict[int, int], after: dict[int, int]) -> int:
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def cpu_figures(before: CpuSnapshot, after: CpuSnapshot, seconds: float, requests: int) -> dict[str, float]:
    """CPU per request of the server (and of PostgreSQL + Redis), and other processes' share meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    gunicorn_s = _spent(before.gunicorn, after.gunicorn) / tick
    services_s = _spent(before.services, after.services) / tick
    wrk_s = after.children_s - before.children_s
    other_s = max(0.0, (after.busy - before.busy) / tick - gunicorn_s - services_s - wrk_s)
    per_request = 1000 / max(1, requests)
    voluntary = sum(v - before.switches.get(tid, (0, 0))[0] for tid, (v, _) in after.switches.items())
    involuntary = sum(n - before.switches.get(tid, (0, 0))[1] for tid, (_, n) in after.switches.items())
    return {
        "gunicorn_ms_per_request": round(gunicorn_s * per_request, 3),
        "voluntary_switches_per_request": round(voluntary / max(1, requests), 2),
        "involuntary_switches_per_request": round(involuntary / max(1, requests), 2),
        "postgres_redis_ms_per_request": round(services_s * per_request, 3),
        "other_processes_cpu_pct": round(100 * other_s / (seconds * (os.cpu_count() or 1)), 1),
    }


def measure(
    name: str, url: str, tokens_file: Path, server: Gunicorn, args: Any, noise_pct: float
) -> dict[str, Any]:
    """One wrk run (after an unmeasured warm-up) with the server's CPU per request."""
    pgid = server.process.pid if server.process else None
    if args.warmup:
        run_wrk(url, tokens_file, args.warmup, args.connections, args.wrk_threads)
    before, started = cpu_snapshot(pgid), time.monotonic()
    result = run_wrk(url, tokens_file, args.duration, args.connections, args.wrk_threads)
    after, elapsed = cpu_snapshot(pgid), time.monotonic() - started
    if before and after:
        result["cpu"] = cpu_figures(before, after, elapsed, result["requests"])
    result["loadavg"] = uptime()
    cpu = result.get("cpu", {})
    log(
        f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"non-2xx {result['non_2xx']}, socket errors {result['errors'] - result['non_2xx']}; "
        f"gunicorn {cpu.get('gunicorn_ms_per_request')} ms CPU/request, "
        f"{cpu.get('voluntary_switches_per_request')} voluntary switches/request; "
        f"other processes {cpu.get('other_processes_cpu_pct')}% of the machine"
    )
    if cpu.get("other_processes_cpu_pct", 0) > noise_pct:
        log(f"  other processes used {cpu['other_processes_cpu_pct']}% of the CPUs: this run is noisy")
    return result


def median_ratio(tops: list[dict[str, Any]], bottoms: list[dict[str, Any]]) -> float | None:
    """The median over rounds of top/bottom requests/s: each round pairs runs made close together."""
    ratios = [t["rps"] / b["rps"] for t, b in zip(tops, bottoms, strict=False) if b["rps"]]
    return round(statistics.median(ratios), 2) if ratios else None


def interleaved_medians_ms(first: Any, second: Any, count: int) -> tuple[float, float]:
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(count):
        for func, times in zip((first, second), samples, strict=True):
            start = time.perf_counter()
            func()
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples[0]), 2), round(statistics.median(samples[1]), 2)
