"""The project's own documentation (`docs/`) stands alone and stays true (issue 21).

- The configuration reference against the code, both ways: every variable `config/settings.py`,
  `gunicorn.conf.py`, `docker/entrypoint` and `docker-compose.yml` read is documented, and every
  documented variable is read by a file its section names.
- Every link of the README and the docs leads to a file of the repository (and a heading of it): a
  fresh clone has nothing outside it.
- The API guide names every path of the schema; the events page names every event the code emits.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")

# The helpers settings.py reads the environment with, and gunicorn.conf.py's.
ENV_HELPERS = {"env_int", "env_bool", "env_list", "env_choice", "read_file_setting", "_int", "env"}


# --- what the code reads ---------------------------------------------------------------------


def python_reads(path: Path) -> set[str]:
    """Names passed to the env helpers, `env.<cast>(...)`, `os.environ.get` / `os.getenv` /
    `os.environ[...]` (a module-level string constant is followed: `os.environ.get(ENV)`)."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def name(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            helper = isinstance(function, ast.Name) and function.id in ENV_HELPERS
            env_cast = isinstance(function, ast.Attribute) and ast.unparse(function.value) == "env"
            environ = ast.unparse(function) in {"os.environ.get", "os.getenv"}
            if helper or env_cast or environ:
                found.add(name(node.args[0]))
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and ast.unparse(node.value) == "os.environ"
        ):
            found.add(name(node.slice))
    return {variable for variable in found if variable and VARIABLE.match(variable)}


def shell_reads(path: Path) -> set[str]:
    """`$NAME` and `${NAME...}` in a shell script, not `$$NAME` (compose's and make's escape)."""
    return set(re.findall(r"(?<!\$)\$\{?([A-Z][A-Z0-9_]*)", path.read_text()))


def make_reads(path: Path) -> set[str]:
    """The Makefile's overridable variables (`NAME ?= ...`) and the environment its recipes read."""
    text = path.read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*\?=", text, re.M)) | set(
        re.findall(r"\$\$\{([A-Z][A-Z0-9_]*)", text)
    )


def reads(path: Path) -> set[str]:
    if path.suffix == ".py":
        return python_reads(path)
    if path.name == "Makefile":
        return make_reads(path)
    return shell_reads(path)


def test_the_readers_find_what_the_code_reads():
    settings = python_reads(ROOT / "config" / "settings.py") | python_reads(ROOT / "config" / "env.py")
    # One of each way settings.py reads a variable.
    assert {"DJANGO_ENV", "CONN_MAX_AGE", "DEBUG", "ALLOWED_HOSTS", "JWT_PRIVATE_KEY_FILE"} <= settings
    assert {"DATABASE_URL", "EMAIL_URL", "SECRET_KEY"} <= settings  # env.db, env.email_url, env.str
    assert {"GUNICORN_THREADS", "GUNICORN_BIND", "HOST"} <= python_reads(ROOT / "gunicorn.conf.py")
    assert "PROMETHEUS_MULTIPROC_DIR" in python_reads(ROOT / "core" / "metrics_process.py")
    assert {
        "SECRET_KEY",
        "SECRET_KEY_FILE",
        "FIELD_ENCRYPTION_KEYS",
        "FIELD_ENCRYPTION_KEYS_FILE",
    } == shell_reads(ROOT / "docker" / "entrypoint")
    assert {"POSTGRES_USER", "WEB_PORT"} <= shell_reads(ROOT / "docker-compose.yml")
    assert "HOSTNAME" not in shell_reads(ROOT / "docker-compose.yml")  # `$$HOSTNAME`: the container's
    assert {"PYTHON", "HOST", "FUZZ_EXAMPLES"} <= make_reads(ROOT / "Makefile")


# --- what the reference documents -------------------------------------------------------------


def documented_sections() -> dict[str, tuple[list[Path], set[str]]]:
    """Per `## ` section of the reference: the files its text names, and the variables of its tables."""
    text = CONFIGURATION.read_text()
    sections = {}
    for title, body in re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.M | re.S):
        prose = body.split("\n|", 1)[0]
        files = [ROOT / name for name in re.findall(r"`([^`\s]+)`", prose) if (ROOT / name).is_file()]
        variables = set()
        for line in body.splitlines():
            if line.startswith("| `"):
                first_cell = line.split("|")[1]
                variables |= {name for name in re.findall(r"`([^`]+)`", first_cell) if VARIABLE.match(name)}
        sections[title] = (files, variables)
    return sections


def test_the_reference_has_its_sections_each_naming_the_files_that_read_it():
    sections = documented_sections()
    assert {"The service", "gunicorn", "The container", "The compose set", "Development and tests"} <= set(
        sections
    )
    for title, (files, variables) in sections.items():
        assert files, f"section {title!r} names no file that reads its variables"
        assert variables, f"section {title!r} documents no variable"


def test_every_variable_the_code_reads_is_documented():
    documented = set().union(*(variables for _, variables in documented_sections().values()))
    for path in (
        "config/settings.py",
        "config/env.py",
        "gunicorn.conf.py",
        "docker/entrypoint",
        "docker-compose.yml",
    ):
        missing = reads(ROOT / path) - documented
        assert not missing, f"{path} reads {sorted(missing)}: document them in docs/configuration.md"


def test_every_documented_variable_is_read_where_its_section_says():
    for title, (files, variables) in documented_sections().items():
        read = set().union(*(reads(path) for path in files))
        unread = variables - read
        assert not unread, (
            f"docs/configuration.md, section {title!r}: {sorted(unread)} read by none of "
            f"{[str(path.relative_to(ROOT)) for path in files]}"
        )


def test_each_variable_is_documented_once():
    seen: dict[str, str] = {}
    for title, (_, variables) in documented_sections().items():
        for variable in variables:
            assert variable not in seen, f"{variable} in both {seen[variable]!r} and {title!r}"
            seen[variable] = title


# --- the pages stand alone ----------------------------------------------------------------------


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and most Markdown renderers make it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_leads_inside_the_repository(page):
    text = page.read_text()
    for outside in ("../shared", "shared/API.md", "shared/DESIGN.md"):
        assert outside not in text, (page.name, outside)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s): the running service's own pages (http://127.0.0.1:8000/...)
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        assert linked.is_relative_to(ROOT), (page.name, target)
        assert linked.exists(), (page.name, target)
        if anchor:
            assert anchor in anchors(linked), (page.name, target, sorted(anchors(linked)))


def test_the_env_example_points_inside_the_repository():
    text = (ROOT / ".env.example").read_text()
    assert "../shared" not in text
    assert "docs/configuration.md" in text


def test_the_readme_leads_to_each_page_of_the_docs():
    readme = (ROOT / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"](docs/{page.name})" in readme, page.name


# --- the guide covers the API and the events ----------------------------------------------------


@pytest.mark.django_db
def test_the_api_guide_names_every_path_of_the_schema(client):
    guide = (DOCS / "api.md").read_text()
    schema = client.get("/api/schema/?format=json").json()
    missing = [
        path
        for path in schema["paths"]
        if path.startswith("/api/v1/") and f"`{path.removeprefix('/api/v1')}`" not in guide
    ]
    assert not missing, f"docs/api.md does not name {missing}"


def test_the_events_page_names_every_event_the_code_emits():
    events = (DOCS / "events.md").read_text()
    emitted = set()
    for app in ("accounts", "profiles", "notifications"):
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            text = path.read_text()
            emitted |= set(re.findall(r"event_emit\(\s*name=\"(\w+)\"", text))
            emitted |= set(re.findall(r"^EVENT_\w+ = \"(\w+)\"", text, re.M))
    assert {"new_user", "user_updated", "new_processing"} <= emitted
    missing = sorted(name for name in emitted if f"`{name}`" not in events)
    assert not missing, f"docs/events.md does not name {missing}"
