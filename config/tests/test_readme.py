"""Every command the deployment and operations guide shows is run here (issues 15, 21).

The guide is `docs/operations.md` (the README leads to it). Its operations blocks run as bash
scripts, in order, against a real server (gunicorn on a SQLite file, the host and port replaced)
with the accounts they talk about set up first. The Deployment block's `docker-compose` commands
need a container engine, which these machines lack: they are checked against the compose
configuration (each service they name exists, each subcommand is compose's), and
`cp .env.example .env` is followed by a validation of the result.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
import requests
import yaml

from testing.stack import free_port

from .test_gunicorn import Process

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
SERVER = "http://127.0.0.1:8000"
# The sections of docs/operations.md whose shell blocks the tests below run against a server.
RUN_AGAINST_A_SERVER = {
    "Health, metrics, logs",
    "The outbox: backlog and replay",
    "Locked and deleted accounts",
    "Rotating the RS256 key",
}


def sections(text: str) -> dict[str, str]:
    """The `## ` sections of a page, by title."""
    return dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S))


def section(text: str, title: str) -> str:
    found = sections(text)
    assert title in found, title
    return found[title]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


def commands(block: str) -> list[str]:
    lines = [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_shell_block_of_the_guide_is_run_or_checked():
    with_blocks = {title for title, body in sections(OPERATIONS).items() if shell_blocks(body)}
    assert with_blocks == RUN_AGAINST_A_SERVER | {"Deployment"}


# --- Deployment --------------------------------------------------------------------------------

COMPOSE_SUBCOMMANDS = {"up", "down", "logs", "run", "exec", "ps", "restart", "pull", "build", "config"}


@pytest.mark.slow
def test_the_deployment_commands_name_what_the_compose_file_has(tmp_path):
    services = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
    lines = [line for block in shell_blocks(section(OPERATIONS, "Deployment")) for line in commands(block)]
    assert lines, "no commands found"
    compose_lines = 0
    for line in lines:
        first = line.split("|")[0]
        words = shlex.split(first)
        if words[:1] == ["cp"]:
            assert words == ["cp", ".env.example", ".env"]
            continue
        assert words[0] == "docker-compose", line
        compose_lines += 1
        subcommand = next(word for word in words[1:] if not word.startswith("-"))
        assert subcommand in COMPOSE_SUBCOMMANDS, line
        named = {
            word.split("=")[0] for word in words[words.index(subcommand) + 1 :] if not word.startswith("-")
        }
        named |= {words[i + 1].split("=")[0] for i, word in enumerate(words) if word == "--scale"}
        assert named <= services, (line, named - services)
    assert compose_lines >= 3
    # `cp .env.example .env`, then the file must still validate.
    if shutil.which("docker-compose"):
        shutil.copy(ROOT / "docker-compose.yml", tmp_path)
        shutil.copy(ROOT / ".env.example", tmp_path / ".env")
        result = subprocess.run(
            ["docker-compose", "-f", "docker-compose.yml", "config", "--quiet"],  # noqa: S607
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_the_readme_keeps_its_first_screen():
    first_screen = README.split("## Documentation")[0]
    assert "make run     # the service on the embedded default" in first_screen
    assert "make test    # the whole test suite" in first_screen


# --- Operations --------------------------------------------------------------------------------


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{free_port()}"
        drop = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ENV", "JWT_PRIVATE_KEY_FILE"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KAFKA_")}
        self.env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}?transaction_mode=IMMEDIATE",  # see test_gunicorn
            LOG_DIR=str(root / "logs"),
            PROMETHEUS_MULTIPROC_DIR=str(root / "metrics"),
            ADMIN_PASSWORD="Readme-Admin-Password-8812",
            METRICS_TOKEN="readme-metrics-token-5531",
            LOGIN_MAX_ATTEMPTS="2",
            GUNICORN_BIND=self.url.removeprefix("http://"),
            WEB_CONCURRENCY="1",
            PYTHONUNBUFFERED="1",
        )
        self.process: Process | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return result.stdout

    def register(self, username: str, password: str) -> None:
        body = {"username": username, "email": f"{username}@example.com", "password": password}
        response = requests.post(f"{self.url}/api/v1/auth/register", json=body, timeout=30)
        assert response.status_code == 201, response.text

    def start(self) -> Server:
        self.manage("migrate", "--noinput", "-v", "0")
        self.process = Process(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "config.wsgi"],
            self.env,
            "web",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/health/live", timeout=15).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not start:\n{self.process.output}")

    def run_block(self, block: str, **env: str) -> str:
        script = block.replace(SERVER, self.url).replace("python manage.py", f"python {ROOT / 'manage.py'}")
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],  # noqa: S607
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        return result.stdout


def on_the_server(test: Callable[..., None]) -> Callable[..., None]:
    """A test of the module's server: slow (a gunicorn start), and kept on one xdist worker so that
    the server starts once."""
    return pytest.mark.slow(pytest.mark.xdist_group("readme")(test))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("readme")).start()
    try:
        yield running
    finally:
        if running.process is not None:
            running.process.stop()


def _operations_blocks() -> dict[str, list[str]]:
    return {title: shell_blocks(body) for title, body in sections(OPERATIONS).items()}


@on_the_server
def test_operations_health_and_metrics(server):
    [block] = _operations_blocks()["Health, metrics, logs"]
    out = server.run_block(block)
    ready, _ = json.JSONDecoder().raw_decode(out)  # curl prints no newline after the body
    assert ready == {"database": "ok", "cache": "ok", "broker": "disabled", "events": "ok"}
    assert 'user_service_logins_total{result="failed"}' in out


@on_the_server
def test_operations_outbox_backlog_and_replay(server):
    for name in ("olive", "oscar"):
        server.register(name, "Olive-Oscar-Pass-6613")
    [block] = _operations_blocks()["The outbox: backlog and replay"]
    out = server.run_block(block)
    assert "user_service_outbox_backlog" in out
    assert "user_service_outbox_oldest_pending_age_seconds" in out
    replayed = re.search(r"^(\d+) event\(s\) pending again", out, re.M)
    assert replayed, out
    assert int(replayed.group(1)) >= 2
    assert re.search(r"^(\d+) published event\(s\) would be replayed", out, re.M)
    assert re.fullmatch(r"published \d+ event\(s\)", out.rstrip().splitlines()[-1])
    # Sent again, by that last command or by the server's own periodic relay (whichever came first).
    page = requests.get(
        f"{server.url}/metrics",
        headers={"Authorization": f"Bearer {server.env['METRICS_TOKEN']}"},
        timeout=30,
    ).text
    assert "user_service_outbox_backlog 0.0" in page


@on_the_server
def test_operations_unlock_and_restore(server):
    password = "Alice-And-Bob-Pass-2290"
    for name in ("alice", "bob"):
        server.register(name, password)
    login = f"{server.url}/api/v1/auth/login"
    for _ in range(2):
        assert (
            requests.post(
                login, json={"username": "alice", "password": "wrong-guess-1"}, timeout=30
            ).status_code
            == 401
        )
    assert (
        requests.post(login, json={"username": "alice", "password": password}, timeout=30).status_code == 429
    )
    tokens = requests.post(login, json={"username": "bob", "password": password}, timeout=30).json()
    deleted = requests.delete(
        f"{server.url}/api/v1/users/me",
        json={"password": password},
        headers={"Authorization": f"Bearer {tokens['access']}"},
        timeout=30,
    )
    assert deleted.status_code == 204
    assert requests.post(login, json={"username": "bob", "password": password}, timeout=30).status_code == 401

    # The administrator's API calls need the second factor: TOTP on (over the API, as an
    # administrator without it does), and the code its app would show next, as `MFA_CODE`.
    admin = requests.post(
        login, json={"username": "admin", "password": server.env["ADMIN_PASSWORD"]}, timeout=30
    ).json()
    headers = {"Authorization": f"Bearer {admin['access']}"}
    secret = requests.post(
        f"{server.url}/api/v1/auth/mfa/totp",
        json={"current_password": server.env["ADMIN_PASSWORD"]},
        headers=headers,
        timeout=30,
    ).json()["secret"]
    now = time.time()
    confirmed = requests.post(
        f"{server.url}/api/v1/auth/mfa/totp/confirm",
        json={"code": pyotp.TOTP(secret).at(now)},
        headers=headers,
        timeout=30,
    )
    assert confirmed.status_code == 200, confirmed.text
    [block] = _operations_blocks()["Locked and deleted accounts"]
    out = server.run_block(block, MFA_CODE=pyotp.TOTP(secret).at(now, counter_offset=1))

    assert "bob" in out
    assert (
        requests.post(login, json={"username": "alice", "password": password}, timeout=30).status_code == 200
    )
    assert requests.post(login, json={"username": "bob", "password": password}, timeout=30).status_code == 200


@on_the_server
def test_operations_key_rotation(server):
    keys = server.root / "keys"
    keys.mkdir(exist_ok=True)
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed"
    command = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run([*command, "-out", str(keys / "jwt-1.pem")], check=True, capture_output=True, timeout=60)
    [block] = _operations_blocks()["Rotating the RS256 key"]
    out = server.run_block(block)
    kids = json.loads(out.strip().splitlines()[-1].replace("'", '"'))
    assert len(kids) == 2
    assert len(set(kids)) == 2
