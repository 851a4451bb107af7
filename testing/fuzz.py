"""Fuzz the whole API against its own OpenAPI schema with schemathesis, as a user and as an admin.

    .venv/bin/python -m testing.fuzz [--max-examples 10] [--url http://127.0.0.1:8000]

Without --url it starts the real stack (PostgreSQL, Redis, gunicorn) on loopback and stops it after.
Passes, each with a fresh session of its own: a normal user, an admin, and then alone each operation
that can end the session it runs in (logout, logout-all, revoking a session, deleting one's own account)
and, each as a fresh administrator, PATCH and DELETE /users/{id} (given its own id, an administrator
deactivates itself). The user and admin passes must still be signed in at their end: a pass that lost
its session part-way fuzzed the rest as nobody. The administrators pass MFA first (TOTP turned on,
then the password and the code), as `MFA_REQUIRED_ROLES` demands. Every operation of the schema is
covered; the checks are: no 5xx, status codes, content types and bodies as documented.
The phases include schemathesis' stateful one, which follows the schema's OpenAPI links
(create -> read -> delete). Exits non-zero when any check fails; reports land in artifacts/fuzz/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pyotp

from testing.stack import ROOT, Service, running_stack

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

# Operations that end the session the fuzzer runs with: fuzzed in the last pass, on a session of their own.
SESSION_ENDING = {
    "POST /api/v1/auth/logout": "revokes the fuzzing session: every later call would be a 401",
    "POST /api/v1/auth/logout-all": "revokes every session of the fuzzing user",
    "DELETE /api/v1/users/me": "deletes the fuzzing user (restorable, but its sessions are gone)",
    # schemathesis reuses the ids it reads in responses: GET /auth/sessions hands it the fuzzing
    # session's own id, and everything after that revocation was a 401 (both passes, 26 operations).
    "DELETE /api/v1/auth/sessions/{id}": "revokes the fuzzing session when given its own id",
}


def _operation_ids(service: Service, operations: dict[str, str]) -> list[str]:
    """The schema's operationId of each "METHOD /path" named (so that a renamed view is still found)."""
    schema = service.request("GET", "/api/schema/?format=json").json()
    ids = []
    for operation in operations:
        method, path = operation.split(" ", 1)
        ids.append(schema["paths"][path][method.lower()]["operationId"])
    return ids


def schemathesis(
    base: str,
    token: str,
    name: str,
    max_examples: int,
    selection: list[str],
    phases: str = "examples,coverage,fuzzing,stateful",
) -> int:
    reports = ROOT / "artifacts" / "fuzz" / name
    reports.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(ROOT / "testing" / "schemathesis.toml"),
        "run",
        f"{base}/api/schema/",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--seed",
        "20261130",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(reports),
        *selection,
    ]
    print(f"::: schemathesis, pass '{name}'", flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode


# Operations an administrator can turn against its own account: schemathesis reads the fuzzing
# administrator's id in GET /users/me and hands it back, and a PATCH setting `is_active: false` left
# every later call of the admin pass a 401 (24 operations). Fuzzed last, each by an administrator of its own.
ADMIN_SELF_ENDING = {
    "PATCH /api/v1/users/{id}": "deactivates the fuzzing administrator when given its own id",
    "DELETE /api/v1/users/{id}": "deletes the fuzzing administrator when given its own id",
}


def mfa_session(service: Service, username: str, password: str) -> str:
    """An administrator's access token from a session that passed MFA (`MFA_REQUIRED_ROLES`): TOTP
    turned on over the API with the password-only session (as an administrator without it does),
    then the password and the code; the codes computed with pyotp, as an authenticator app would."""
    first = service.login(username, password)["access"]
    started = service.request("POST", "/api/v1/auth/mfa/totp", {"current_password": password}, token=first)
    if started.status != 200:
        raise RuntimeError(f"enrolling {username}: {started.status} {started.body[:300]!r}")
    totp, now = pyotp.TOTP(started.json()["secret"]), time.time()
    confirmed = service.request("POST", "/api/v1/auth/mfa/totp/confirm", {"code": totp.at(now)}, token=first)
    if confirmed.status != 200:
        raise RuntimeError(f"confirming {username}: {confirmed.status} {confirmed.body[:300]!r}")
    asked = service.request("POST", "/api/v1/auth/login", {"username": username, "password": password})
    body = {"mfa_token": asked.json().get("mfa_token", ""), "code": totp.at(now, counter_offset=1)}
    verified = service.request("POST", "/api/v1/auth/mfa/verify", body)  # the next step: a code works once
    if verified.status != 200:
        raise RuntimeError(f"MFA login of {username}: {verified.status} {verified.body[:300]!r}")
    return str(verified.json()["access"])


def _new_admin(service: Service, admin: str, name: str) -> str:
    """A fresh administrator, made through the API by `admin`; its access token (passed MFA)."""
    password = f"{name} fuzzing pass phrase"
    reply = service.request(
        "POST",
        "/api/v1/users",
        {"username": name, "email": f"{name}@example.com", "password": password, "roles": ["admin"]},
        token=admin,
    )
    if reply.status != 201:
        raise RuntimeError(f"creating administrator {name}: {reply.status} {reply.body[:300]!r}")
    return mfa_session(service, name, password)


def _still_signed_in(service: Service, token: str, name: str) -> bool:
    """A pass whose session ended part-way fuzzed the rest as nobody: every answer a 401, and green."""
    status = service.request("GET", "/api/v1/users/me", token=token).status
    if status != 200:
        print(
            f"::: schemathesis, pass '{name}': its session ended part-way (GET /users/me: {status})",
            flush=True,
        )
    return status == 200


def fuzz(service: Service, admin_password: str, max_examples: int) -> int:
    ending = _operation_ids(service, SESSION_ENDING)
    admin_ending = _operation_ids(service, ADMIN_SELF_ENDING)
    skip = [arg for operation_id in ending + admin_ending for arg in ("--exclude-operation-id", operation_id)]
    user = f"fuzz-{uuid.uuid4().hex[:8]}"
    failures = 0
    token = service.register_and_login(user)["access"]
    failures += bool(schemathesis(service.base, token, "user", max_examples, skip))
    failures += not _still_signed_in(service, token, "user")
    admin = mfa_session(service, "admin", admin_password)
    failures += bool(schemathesis(service.base, admin, "admin", max_examples, skip))
    failures += not _still_signed_in(service, admin, "admin")
    # Each session-ending call on a session of its own: its first example may really end it, the rest
    # check the 401 that follows. No stateful phase: these operations link to nothing.
    only_phases = "examples,coverage,fuzzing"
    for n, operation_id in enumerate(ending):
        fresh = service.register_and_login(f"{user}-end{n}")["access"]
        only = ["--include-operation-id", operation_id]
        failures += bool(schemathesis(service.base, fresh, operation_id, max_examples, only, only_phases))
    for n, operation_id in enumerate(admin_ending):
        fresh = _new_admin(service, admin, f"{user}-admin{n}")
        only = ["--include-operation-id", operation_id]
        failures += bool(schemathesis(service.base, fresh, operation_id, max_examples, only, only_phases))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--url", help="a running service (its admin password in --admin-password)")
    parser.add_argument("--admin-password", default="an admin pass phrase")
    options = parser.parse_args()
    with ExitStack() as stack:
        if options.url:
            service = Service(options.url.rstrip("/"))
        else:
            folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
            # Both providers configured, so their real checks are fuzzed (Yandex is unreachable: 502).
            providers = {
                "SOCIAL_AUTH_YANDEX_OAUTH2_KEY": "fuzz-client-id",
                "SOCIAL_AUTH_YANDEX_OAUTH2_SECRET": "fuzz-client-secret",
                "TELEGRAM_BOT_TOKEN": "123456:fuzz-bot-token",
                # The per-user upload limit would answer 429 to most of a pass's creates, and leave
                # the uploads' own checks unfuzzed (the limit has tests of its own).
                "THROTTLE_UPLOAD_USER": "100000/hour",
            }
            running = stack.enter_context(running_stack(folder, extra_env=providers))
            service = running.gunicorn(workers=2)
        failures = fuzz(service, options.admin_password, options.max_examples)
    print(f"::: schemathesis: {failures} pass(es) with failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
