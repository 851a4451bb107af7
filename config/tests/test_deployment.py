"""The deployment files (issue 15): the compose set validates on a fresh clone with no `.env`,
`.env.example` names every variable it reads, the image is slim and non-root, and
`DJANGO_ENV=production` passes `check --deploy` with nothing to report."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from testing.processes import environment, python

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "beat", "consumer")

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (apt-get install docker-compose; .ci/run does)",
)


def _compose(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", *args],  # noqa: S607
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@needs_compose
def test_compose_validates_on_a_fresh_clone_without_env(tmp_path):
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    assert not (tmp_path / ".env").exists()
    result = _compose(tmp_path, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""  # no "variable is not set" warning either


@pytest.mark.slow
@needs_compose
def test_compose_validates_with_the_example_env_and_keeps_the_order(tmp_path):
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = _compose(tmp_path, "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "redis", "kafka", "migrate", *APP_SERVICES}
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name, service in services.items():
        if name != "migrate":  # a one-shot job: its health is its exit status
            assert service["healthcheck"]["test"], name
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    mounts = {
        name: [v["target"] if isinstance(v, dict) else v for v in s.get("volumes", [])]
        for name, s in services.items()
    }
    assert any("/var/lib/postgresql/data" in str(m) for m in mounts["postgres"])
    assert any("/data" in str(m) for m in mounts["redis"])
    assert any("/var/lib/kafka/data" in str(m) for m in mounts["kafka"])
    assert services["web"]["environment"]["WEB_CONCURRENCY"] == "2"
    assert services["web"]["environment"]["DJANGO_ENV"] == "production"


def test_env_example_names_every_variable_compose_reads():
    read = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert read == example


def test_every_compose_variable_has_a_default():
    """`${VAR}` alone would need a `.env`; `${VAR:?}` would refuse to start without one."""
    text = COMPOSE.read_text()
    assert re.findall(r"\$\{[A-Z0-9_]+\}", text) == []
    assert re.findall(r"\$\{[A-Z0-9_]+:?\?", text) == []


def test_the_image_is_slim_and_runs_as_a_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users
    assert users[-1] not in {"root", "0"}
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for private in (".env", ".secret_key", ".git", "*.pem", "db.sqlite3", "media", "keys"):
        assert private in ignored


@pytest.mark.slow
@needs_compose
def test_uploads_land_in_a_volume_not_in_the_image(tmp_path):
    """The image's /app is read-only code: uploads need a writable volume that outlives the image."""
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    result = _compose(tmp_path, "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert "documents" in config["volumes"]
    for name in (*APP_SERVICES, "migrate"):
        service = config["services"][name]
        folder = service["environment"]["DOCUMENT_STORAGE_DIR"]
        assert not folder.startswith("/app")
        mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in service["volumes"]]
        assert any(mount.split(":")[:2] == ["documents", folder] for mount in mounts), mounts
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DOCUMENT_STORAGE_DIR=/var/lib/user-service/documents" in dockerfile


@pytest.mark.slow
def test_the_entrypoint_makes_one_secret_key_and_keeps_it(tmp_path):
    key_file = tmp_path / "state" / "secret_key"
    key_file.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(key_file)

    def run() -> str:
        result = subprocess.run(
            [str(ROOT / "docker" / "entrypoint"), "sh", "-c", 'printf %s "$SECRET_KEY"'],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    first = run()
    assert len(first) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run() == first
    env["SECRET_KEY"] = "given-by-the-operator"
    assert run() == "given-by-the-operator"


def test_the_entrypoint_makes_one_field_encryption_key_and_keeps_it(tmp_path):
    from cryptography.fernet import Fernet

    key_file = tmp_path / "state" / "field_encryption_keys"
    key_file.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}}
    env["FIELD_ENCRYPTION_KEYS_FILE"] = str(key_file)

    def run() -> str:
        command = [str(ROOT / "docker" / "entrypoint"), "sh", "-c", 'printf %s "$FIELD_ENCRYPTION_KEYS"']
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=True).stdout

    first = run()
    Fernet(first)  # a Fernet key, which settings.py accepts
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run() == first
    env["FIELD_ENCRYPTION_KEYS"] = "given-by-the-operator"
    assert run() == "given-by-the-operator"


# --- production settings ---------------------------------------------------------------------

PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "p7Lr2Vx9Qm4Tz8Kb1Nc6Wd3Hf5Js0Ga7Ye2Uo9Ri4Ek1Mt8Pl3Xq6Zv5Bn0Cw7Dj",
    "ALLOWED_HOSTS": "users.example.com",
    "JWT_ISSUER": "https://users.example.com",
    "FIELD_ENCRYPTION_KEYS": "bXVsdGktZmFjdG9yIHNlY3JldHMgYXQgcmVzdCAtIDE=",
    "LOG_FORMAT": "json",
}


def _run(code: list[str], extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    drop = {
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "DEBUG",
        "TRUSTED_PROXY_COUNT",
    }
    return python(*code, env=environment(*drop, **{**PRODUCTION, **(extra or {})}))


@pytest.mark.slow
def test_production_check_deploy_reports_nothing(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], {"LOG_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


@pytest.mark.slow
@pytest.mark.parametrize(
    ("proxies", "expected"), [("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")]
)
def test_the_proxy_ssl_header_is_trusted_only_behind_trusted_proxies(tmp_path, proxies, expected):
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    result = _run(["-c", code], {"TRUSTED_PROXY_COUNT": proxies, "LOG_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be plain or json"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("METRICS_ALLOWED_CIDRS", "10.0.0.0/8,not-a-net", "METRICS_ALLOWED_CIDRS: 'not-a-net'"),
        ("READY_MAX_EVENT_LAG_SECONDS", "soon", "READY_MAX_EVENT_LAG_SECONDS must be an integer"),
    ],
)
def test_a_malformed_operations_setting_names_the_variable(tmp_path, name, value, message):
    result = _run(["-c", "import django; django.setup()"], {name: value, "LOG_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert message in result.stderr
