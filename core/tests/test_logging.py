"""Logs (issue 15): plain or JSON lines with the request id, `X-Request-ID` honoured when sane and
echoed, and no secret in any line. The Celery side (a real worker logging under the request's id)
is in `config/tests/test_gunicorn.py`."""

from __future__ import annotations

import http.server
import json
import logging
import logging.config
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from django.conf import settings as django_settings
from django.core import mail

from core.logging_context import redact
from core.logging_setup import LOG_FILE_NAME, build_logging
from notifications import outbox

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
RESET = "/api/v1/auth/password/reset"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm"


@contextmanager
def logging_to(log_dir: Path, *, log_format: str, level: str = "DEBUG") -> Iterator[Path]:
    """The service's own LOGGING, pointed at `log_dir`, for the duration; the suite's after."""
    logging.config.dictConfig(build_logging(log_dir=log_dir, level=level, log_format=log_format))
    try:
        yield log_dir / LOG_FILE_NAME
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the request id --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("given", ["3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "lb-7f3a.91:2", "A" * 128])
def test_a_sane_request_id_is_honoured_and_echoed(client, given):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] == given


@pytest.mark.django_db
@pytest.mark.parametrize(
    "given", ["", "has space", "A" * 129, "line\nbreak", '"quoted"', "-leading-dash", "é-accent", "a;b"]
)
def test_an_odd_request_id_is_replaced_by_a_generated_one(client, given):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=given)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response["X-Request-ID"] != given


@pytest.mark.django_db
def test_each_request_gets_its_own_generated_id(client):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/api/v1/users/me")["X-Request-ID"]  # an error answer carries it too
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


@pytest.mark.django_db
def test_every_json_line_of_a_request_carries_its_id(tmp_path, api_client, login, user, settings):
    """A replayed refresh token: the service logs it, the relay logs the events, all under one id."""
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    tokens = login(user)
    assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 200
    with logging_to(tmp_path, log_format="json") as log_file:
        replay = api_client.post(
            REFRESH, {"refresh": tokens["refresh"]}, format="json", HTTP_X_REQUEST_ID="replay-1234"
        )
        logging.getLogger("after").warning("outside any request")
    assert replay.status_code == 401
    assert replay["X-Request-ID"] == "replay-1234"
    lines = json_lines(log_file)
    during = [line for line in lines if line["logger"] != "after"]
    assert any("Refresh token reuse" in line["message"] for line in during)
    assert {line["request_id"] for line in during} == {"replay-1234"}
    assert {"time", "level", "logger", "message", "request_id"} <= set(during[0])
    outside = [line for line in lines if line["logger"] == "after"]
    assert outside[0]["request_id"] == "-"


@pytest.mark.django_db
def test_plain_lines_carry_the_request_id_too(tmp_path, api_client, login, user):
    tokens = login(user)
    api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    with logging_to(tmp_path, log_format="plain") as log_file:
        api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json", HTTP_X_REQUEST_ID="plain-42")
    text = log_file.read_text()
    assert re.search(
        r"^\S+ \S+ WARNING accounts\.services\.sessions \[plain-42\] Refresh token reuse", text, re.M
    )


def test_the_file_handler_rotates_daily_in_log_dir(tmp_path):
    config = build_logging(log_dir=tmp_path / "logs", level="INFO", log_format="json")
    handler = config["handlers"]["file"]
    assert handler["class"] == "concurrent_log_handler.ConcurrentTimedRotatingFileHandler"
    assert handler["when"] == "midnight"
    assert handler["filename"] == str(tmp_path / "logs" / "user_service.log")
    assert config["handlers"]["console"]["stream"] == "ext://sys.stdout"
    assert set(config["root"]["handlers"]) == {"console", "file"}


def test_an_unwritable_log_dir_leaves_stdout_logging(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = build_logging(log_dir=blocker / "logs", level="INFO", log_format="plain")
    assert list(config["handlers"]) == ["console"]


# --- no secret in any line -------------------------------------------------------------------


class _Provider(http.server.BaseHTTPRequestHandler):
    """A stand-in for a social provider's user-info endpoint, on loopback."""

    def do_GET(self) -> None:
        body = b'{"id": "1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.django_db
def test_no_secret_reaches_the_log_at_debug(tmp_path, api_client, settings, commit_per_request):
    """Register, log in, refresh (twice: a replay), fail logins, reset the password through the
    mailed link, call a provider with its token; everything logged at DEBUG, SQL included; then
    grep the file for every secret used."""
    settings.DEBUG = True  # Django would log SQL with its parameters
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    password = "Correct-Horse-Battery-9431"
    wrong = ["Wrong-Guess-Alpha-1177", "Wrong-Guess-Beta-2288"]
    new_password = "Fresh-Staple-Lamp-5520"
    provider_token = "yandex-oauth-AQAAAAA1234567890abcdef"
    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()

    with logging_to(tmp_path, log_format="json") as log_file:
        registered = api_client.post(
            REGISTER,
            {"username": "carol", "email": "carol@example.com", "password": password},
            format="json",
        )
        assert registered.status_code == 201, registered.content
        for guess in wrong:
            assert (
                api_client.post(LOGIN, {"username": "carol", "password": guess}, format="json").status_code
                == 401
            )
        form = api_client.post(
            LOGIN,
            urlencode({"grant_type": "password", "username": "carol", "password": password}),
            content_type="application/x-www-form-urlencoded",
        )
        assert form.status_code == 200
        tokens = form.json()
        rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()
        assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401

        assert api_client.post(RESET, {"email": "carol@example.com"}, format="json").status_code == 202
        link = re.search(r"\S*reset-password\S*token=[^\s\"'<]+", mail.outbox[-1].body).group(0)
        query = parse_qs(urlparse(link).query)
        uid, reset_token = query["uid"][0], query["token"][0]
        confirmed = api_client.post(
            RESET_CONFIRM, {"uid": uid, "token": reset_token, "new_password": new_password}, format="json"
        )
        assert confirmed.status_code == 204, confirmed.content
        assert (
            api_client.post(LOGIN, {"username": "carol", "password": new_password}, format="json").status_code
            == 200
        )

        port = provider.server_address[1]
        requests.get(
            f"http://127.0.0.1:{port}/info?format=json&oauth_token={provider_token}",
            headers={"Authorization": f"OAuth {provider_token}"},
            timeout=5,
        )
        outbox.outbox_publish()  # the events of all this, written to the events log
        # A careless line of our own is masked as well (the second line of defence).
        logging.getLogger("accounts").debug(
            "payload %s", {"password": password, "refresh": rotated["refresh"], "access": rotated["access"]}
        )
    provider.shutdown()

    text = log_file.read_text()
    assert len(text.splitlines()) >= 5, text  # the capture worked: events, the reuse warning, ...
    assert "Refresh token reuse" in text
    assert "new_user" in text
    secrets = {
        "password": password,
        "new password": new_password,
        "access token": tokens["access"],
        "refresh token": tokens["refresh"],
        "rotated access token": rotated["access"],
        "rotated refresh token": rotated["refresh"],
        "reset token": reset_token,
        "reset link": link,
        "provider token": provider_token,
        **{f"failed password {n}": guess for n, guess in enumerate(wrong)},
    }
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert leaked == [], f"secrets in the log: {leaked}"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /info?format=json&oauth_token=AQAAAAA-secret-1 HTTP/1.1", "AQAAAAA-secret-1"),
        ("body {'password': 'hunter2-long', 'username': 'x'}", "hunter2-long"),
        ('{"refresh": "abc.def.ghi-secret", "n": 1}', "abc.def.ghi-secret"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "eyJhbGciOiJIUzI1NiJ9"),
        ("/reset-password?uid=MQ&token=cf2m3x-0a1b2c3d4e5f", "cf2m3x-0a1b2c3d4e5f"),
        ("client_secret=s3cr3t-value&code=1", "s3cr3t-value"),
    ],
)
def test_redact_masks_what_libraries_might_print(line, secret):
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_redact_leaves_ordinary_lines_alone():
    line = 'event uploading_data new_user {"user_id": "42", "code": "invalid_credentials"}'
    assert redact(line) == line


# --- one record, one line ----------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_a_message_carrying_line_breaks_stays_one_line(tmp_path, log_format):
    """A value from outside (a PDF's font name in a parser warning, say) cannot forge a line."""
    forged = "x\nCRITICAL accounts.security [forged-rid] admin password changed by mallory\r\x1b[2K"
    with logging_to(tmp_path, log_format=log_format) as log_file:
        logging.getLogger("pypdf").warning("Advanced encoding %s not implemented yet", forged)
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1, lines
    assert "mallory" in lines[0]
    assert "\x1b" not in lines[0]
    assert not any(line.startswith("CRITICAL") or " CRITICAL " in line for line in lines)
