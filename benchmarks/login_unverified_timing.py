#!/usr/bin/env python3
"""Mandatory email verification: can a wrong password tell an unverified account from the others?

    python benchmarks/login_unverified_timing.py [--requests 100]

Starts the embedded default with `EMAIL_VERIFICATION=mandatory` (as
`password_reset_timing.py` does), imports a verified and an unverified account
with `bulk_create_users`, and posts `/api/v1/auth/login` with a wrong password,
alternating: an unknown name, the verified account, the unverified account.
All three must answer 401 (the tests hold the bodies equal) and take the same
time (one password hash each: an unknown name is hashed too). Prints one JSON document: the
median and p90 latency of each, and the largest median difference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.password_reset_timing import STRONG, post, start_service, summary

LOGIN = "/api/v1/auth/login"
WRONG = "not the password at all"
KINDS = {"unknown": "nobody-by-this-name", "verified": "bench-verified", "unverified": "bench-unverified"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per kind (rotated)")
    args = parser.parse_args()
    users = "\n".join(
        json.dumps(
            {"username": name, "email": f"{name}@example.com", "password": STRONG, "email_verified": ok}
        )
        for name, ok in (("bench-verified", True), ("bench-unverified", False))
    )
    tmp = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    process = None
    try:
        base, process = start_service(
            tmp,
            {
                "EMAIL_VERIFICATION": "mandatory",
                "THROTTLE_LOGIN_IP": "100000/min",
                "LOGIN_MAX_ATTEMPTS": "1000000",
            },
            users,
        )
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        order = list(KINDS)
        for index in range(args.requests + 10):
            for kind in order[index % 3 :] + order[: index % 3]:
                status, elapsed = post(base, LOGIN, {"username": KINDS[kind], "password": WRONG})
                if status != 401:
                    raise SystemExit(f"{kind}: login answered {status}")
                if index >= 10:  # the first rounds warm up every path
                    times[kind].append(elapsed)
        result: dict[str, object] = {kind: summary(samples) for kind, samples in times.items()}
        medians = [summary(samples)["median_ms"] for samples in times.values()]
        result["largest_median_difference_ms"] = round(max(medians) - min(medians), 2)
        result["right_password_unverified"] = post(
            base, LOGIN, {"username": "bench-unverified", "password": STRONG}
        )[0]
        result["service"] = "embedded default (runserver, SQLite), EMAIL_VERIFICATION=mandatory"
        print(json.dumps(result, indent=2))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
