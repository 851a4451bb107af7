"""RFC 6238 time-based one-time passwords, with `pyotp`: secrets, the `otpauth://` URI, which time
step a code belongs to, and the QR code of the URI (an inline SVG made by `segno`).

The parameters are the ones every authenticator app reads without asking: SHA-1, 6 digits,
30-second steps, a 160-bit base32 secret (RFC 4226's recommended length).

Written around `pyotp.TOTP.verify` rather than with it: `verify` answers yes or no, and the
replay guard needs to know *which* step a code matched, so that the step is claimed once
(`accounts.services.mfa_codes`); a code of a step at or before the last one used is refused.
"""

from __future__ import annotations

import hmac
import time

import pyotp
import segno

DIGITS = 6
STEP_SECONDS = 30
#: Codes of one step before and after the current one are accepted: a phone's clock that is
#: a little off, or a code typed just as it changed.
DRIFT_STEPS = 1
#: The name authenticator apps show above the code.
ISSUER = "User service"


def new_secret() -> str:
    """160 random bits, base32 (32 characters)."""
    return pyotp.random_base32(length=32)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def provisioning_uri(secret: str, *, account: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app imports (by QR code or by hand)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def normalized_code(code: str) -> str | None:
    """The six digits of a code as people type it (spaces allowed: "123 456"); None if it is none."""
    digits = "".join(code.split())
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def clock() -> float:
    """Now, in epoch seconds: the one clock the steps are read from (tests move it)."""
    return time.time()


def current_step(now: float | None = None) -> int:
    return int(now if now is not None else clock()) // STEP_SECONDS


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (within the drift window) whose code `code` is, or None.

    Every candidate is compared in constant time, and all of them are computed whether or not
    one matched, so the answer's timing says nothing about which step (or digit) was right.
    """
    digits = normalized_code(code)
    if digits is None:
        return None
    totp = _totp(secret)
    step = current_step(now)
    matched = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step + offset), digits):
            matched = step + offset
    return matched


def code_at(secret: str, *, step: int) -> str:
    """The code of a step (for tests and the benchmarks: what an authenticator app would show)."""
    return _totp(secret).generate_otp(step)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an inline `<svg>` element: drawn here, no image service is called."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, border=2, title="TOTP setup QR code"))
