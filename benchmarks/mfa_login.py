#!/usr/bin/env python3
"""What the second factor costs a login (issue 23).

    python benchmarks/mfa_login.py [--logins 40]

Starts the embedded default as `make run` does (migrate, runserver, a throwaway SQLite file, the
production password hasher: bcrypt_sha256, 12 rounds) on a free loopback port, with `--logins`
accounts without MFA and as many with TOTP on (a known secret). Each account logs in once (a
TOTP code works once per account and time step, so every MFA login needs an account of its own),
the two kinds alternated. Prints one JSON document:

- `login_plain`: `POST /auth/login` of an account without MFA (200, the token pair);
- `login_mfa_password`, `verify`: the two steps of an account with TOTP (403 `mfa_required`, then
  `POST /auth/mfa/verify`, 200), and `login_mfa_total`, their sum per login;
- `bcrypt_verify`: one `check_password` against a bcrypt_sha256 hash, in this process;
- `ratios`: `login_mfa_total / login_plain` and `verify / bcrypt_verify` (medians).
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.password_reset_timing import start_service, summary  # noqa: E402  (after the path is set)

PASSWORD = "correct horse battery staple"  # noqa: S105 (the throwaway accounts' password)
SECRET = base64.b32encode(b"benchmark-totp-secret").decode().rstrip("=")[:32]
KEY = base64.urlsafe_b64encode(b"mfa benchmark field encryption!!").decode()

#: Run with `manage.py shell`: the accounts, one password hash for all (hashing each would take
#: minutes), and TOTP on for the `mfa-*` ones, as a confirmed enrollment leaves it.
SETUP = """
import sys
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from accounts import field_encryption
from accounts.models import TOTPDevice, User
count, password, secret = int(sys.argv[2]), sys.argv[3], sys.argv[4]  # argv[1]: this code
digest = make_password(password)
sealed = field_encryption.encrypt(secret)
for kind in ("plain", "mfa"):
    for n in range(count):
        user = User.objects.create(username=f"{kind}-{n}", email=f"{kind}-{n}@example.com", password=digest)
        if kind == "mfa":
            TOTPDevice.objects.create(user=user, secret=sealed, confirmed_at=timezone.now())
"""


def post(base: str, path: str, body: dict[str, str]) -> tuple[int, dict[str, object], float]:
    request = urllib.request.Request(  # noqa: S310  (a loopback URL this script started)
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw or b"{}"), (time.perf_counter() - started) * 1000


def bcrypt_verify_ms(rounds: int) -> list[float]:
    """One bcrypt_sha256 check (what a password login pays), timed here without the service."""
    from django.conf import settings

    settings.configure(PASSWORD_HASHERS=["django.contrib.auth.hashers.BCryptSHA256PasswordHasher"])
    from django.contrib.auth.hashers import check_password, make_password

    encoded = make_password(PASSWORD)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert check_password(PASSWORD, encoded)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=40, help="logins of each kind (one account each)")
    args = parser.parse_args()
    import pyotp

    tmp = Path(tempfile.mkdtemp(prefix="mfa-bench-"))

    def accounts(python: str, env: dict[str, str]) -> None:
        subprocess.run(
            [python, "-c", "import django, sys; django.setup(); exec(sys.argv[1])", SETUP, str(args.logins),
             PASSWORD, SECRET],
            cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"}, check=True,
        )  # fmt: skip

    process = None
    try:
        base, process = start_service(
            tmp,
            {"FIELD_ENCRYPTION_KEYS": KEY, "THROTTLE_LOGIN_IP": "100000/min", "LOGIN_MAX_ATTEMPTS": "100000"},
            setup=accounts,
        )
        totp = pyotp.TOTP(SECRET)
        times: dict[str, list[float]] = {"login_plain": [], "login_mfa_password": [], "verify": []}
        for n in range(args.logins):
            status, _, elapsed = post(
                base, "/api/v1/auth/login", {"username": f"plain-{n}", "password": PASSWORD}
            )
            if status != 200:
                raise SystemExit(f"plain login answered {status}")
            times["login_plain"].append(elapsed)
            status, body, elapsed = post(
                base, "/api/v1/auth/login", {"username": f"mfa-{n}", "password": PASSWORD}
            )
            if status != 403:
                raise SystemExit(f"MFA login answered {status}")
            times["login_mfa_password"].append(elapsed)
            status, _, elapsed = post(
                base, "/api/v1/auth/mfa/verify", {"mfa_token": str(body["mfa_token"]), "code": totp.now()}
            )
            if status != 200:
                raise SystemExit(f"verify answered {status}")
            times["verify"].append(elapsed)
        totals = [a + b for a, b in zip(times["login_mfa_password"], times["verify"], strict=True)]
        bcrypt = bcrypt_verify_ms(args.logins)
        result = {kind: summary(samples) for kind, samples in times.items()}
        result["login_mfa_total"] = summary(totals)
        result["bcrypt_verify"] = summary(bcrypt)
        result["ratios"] = {
            "login_mfa_total / login_plain": round(
                statistics.median(totals) / statistics.median(times["login_plain"]), 3
            ),
            "verify / bcrypt_verify": round(
                statistics.median(times["verify"]) / statistics.median(bcrypt), 3
            ),
        }
        result["service"] = "embedded default (runserver, SQLite, bcrypt_sha256)"
        print(json.dumps(result, indent=2))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
