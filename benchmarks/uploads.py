#!/usr/bin/env python3
"""Upload benchmark: POST /api/v1/resumes with a 5 MiB PDF and a 5 MiB DOCX, in-process through the
whole stack (authentication, the multipart parser with the size guard, the type check, extraction,
the storage, the row and its event), on the embedded default (SQLite file, in-process cache).

    python benchmarks/uploads.py [--uploads 20]

Each kind runs in a process of its own, so its peak memory is its own:
- `throughput`: uploads a second and MiB a second over `--uploads` sequential uploads;
- `python_peak_mib`: tracemalloc's peak of Python allocations during one upload;
- `rss_growth_mib`: how far the process's peak RSS rose over all its uploads (ru_maxrss).

The files are built by `profiles/tests/files.py`: a one-page text PDF padded with a 5 MiB
attachment, a DOCX padded with a 5 MiB stored part (both as real clients send them). Prints one
JSON document; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = 5 * 1024 * 1024 - 16 * 1024  # just under UPLOAD_MAX_BYTES with the multipart envelope


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(kind: str, uploads: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            "DOCUMENT_STORAGE_DIR": str(work / "documents"),
            "LOG_DIR": str(work / "logs"),
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver",
        }
    )
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
    from rest_framework.test import APIClient

    from accounts.tests.factories import UserFactory
    from profiles.models import Resume
    from profiles.tests import files

    call_command("migrate", verbosity=0)
    password = secrets.token_urlsafe(16)
    UserFactory(username="bench", password=password)
    client = APIClient()
    tokens = client.post(
        "/api/v1/auth/login", {"username": "bench", "password": password}, format="json"
    ).json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    if kind == "pdf":
        data = files.pdf_bytes(["Ada Lovelace", "Analyst of the Analytical Engine"], pad_to=SIZE)
    else:
        data = files.docx_bytes(["Ada Lovelace", "Analyst of the Analytical Engine"], pad_to=SIZE)

    # Encoded once: the client's own copy of the body is not the server's memory. (The test
    # client's FakePayload still holds one 5 MiB copy of the body, as a server's socket buffer
    # would not: the figures are an upper bound.)
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile(f"cv.{kind}", data)})

    def upload() -> None:
        response = client.generic("POST", "/api/v1/resumes", data=body, content_type=MULTIPART_CONTENT)
        assert response.status_code == 201, response.content

    upload()  # warm: imports, first connection, caches
    rss_before = _rss_mib()
    tracemalloc.start()
    upload()
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    for _ in range(uploads):
        upload()
    elapsed = time.perf_counter() - started
    assert Resume.objects.count() == uploads + 2
    return {
        "file_bytes": len(data),
        "uploads": uploads,
        "seconds": round(elapsed, 3),
        "uploads_per_s": round(uploads / elapsed, 2),
        "mib_per_s": round(uploads * len(data) / elapsed / 2**20, 1),
        "ms_per_upload": round(elapsed / uploads * 1000, 1),
        "python_peak_mib": round(python_peak / 2**20, 2),
        "rss_growth_mib": round(_rss_mib() - rss_before, 1),
        "rss_peak_mib": round(_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--child", choices=["pdf", "docx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.uploads)))
        return
    results = {}
    for kind in ("pdf", "docx"):
        print(f"uploading {args.uploads} x 5 MiB {kind} ...", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--uploads", str(args.uploads)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        json.dumps(
            {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": results},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
