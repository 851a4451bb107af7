"""The single-user admin commands: register_user, list_users, delete_user, and Django's createsuperuser.

The issue "Admin commands": each command through `call_command`, its whole
effect (rows, outbox events, audit, sessions and cached state as the API sees
them). Bulk commands: test_commands_bulk_*.py; exit statuses of real
processes: test_commands_subprocess.py.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditEvent, AuthSession, User
from accounts.serializers import AdminUserSerializer
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer
from notifications.models import OutboxEvent

ME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"
RESTORE = "/api/v1/auth/restore"
STRONG = "correct horse battery staple"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


class FakeStdin(io.StringIO):
    """Standard input that says whether it is a terminal."""

    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def run(name: str, *args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def api_login(username: str, password: str) -> Any:
    return APIClient().post(LOGIN, {"username": username, "password": password}, format="json")


def events(name: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(key=name).order_by("created_at"))


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch):
    def set_stdin(text: str = "", tty: bool = False) -> FakeStdin:
        fake = FakeStdin(text, tty)
        monkeypatch.setattr("sys.stdin", fake)
        return fake

    return set_stdin


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch):
    """Scripted answers to `input()` and `getpass.getpass()`; records which prompt used which."""
    asked: list[tuple[str, str]] = []

    def script(inputs: list[str], passwords: list[str]) -> list[tuple[str, str]]:
        def fake_input(prompt: str = "") -> str:
            asked.append(("input", prompt))
            return inputs.pop(0)

        def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
            asked.append(("getpass", prompt))
            return passwords.pop(0)

        monkeypatch.setattr("builtins.input", fake_input)
        monkeypatch.setattr("getpass.getpass", fake_getpass)
        return asked

    return script


# --- register_user -------------------------------------------------------------------------


def test_register_user_with_flags_and_password_on_stdin(stdin):
    stdin(STRONG + "\n")
    out, _ = run(
        "register_user",
        "--username",
        "Alice",
        "--email",
        " Alice@Example.COM ",
        "--full-name",
        "Alice Liddell",
        "--password-stdin",
    )

    user = User.objects.get(username="Alice")
    assert (user.email, user.full_name, user.roles) == ("alice@example.com", "Alice Liddell", ["user"])
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    assert user.check_password(STRONG)
    assert f"Created user Alice ({user.id})" in out
    (event,) = events("new_user")
    assert event.payload == {
        "event_id": str(event.id),
        "occurred_at": event.payload["occurred_at"],
        "user_id": str(user.id),
        "username": "Alice",
        "full_name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": False,
        "created_at": user.created_at.isoformat(),
    }
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.REGISTERED).count() == 1
    tokens = api_login("alice@example.com", STRONG).json()
    assert bearer(tokens["access"]).get(ME).json()["username"] == "Alice"


def test_register_user_admin_flag_gives_the_admin_role_and_the_django_admin(stdin):
    stdin(STRONG + "\n")
    run("register_user", "--username", "boss", "--email", "boss@example.com", "--admin", "--password-stdin")

    user = User.objects.get(username="boss")
    assert user.roles == ["admin", "user"]
    assert user.is_staff
    tokens = api_login("boss", STRONG).json()
    assert bearer(tokens["access"]).get(ME).json()["is_admin"] is True


def test_register_user_role_flag_adds_to_the_user_role(stdin):
    stdin(STRONG + "\n")
    run(
        "register_user",
        "--username",
        "mo",
        "--email",
        "mo@example.com",
        "--role",
        "moderator",
        "--password-stdin",
    )

    assert User.objects.get(username="mo").roles == ["moderator", "user"]


def test_register_user_unknown_role_is_refused_before_anything_is_asked(stdin):
    stdin(STRONG + "\n")
    with pytest.raises(CommandError, match=r"Unknown role: wizard\."):
        run(
            "register_user",
            "--username",
            "x",
            "--email",
            "x@example.com",
            "--role",
            "wizard",
            "--password-stdin",
        )
    assert not User.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        ("123", ["This password is too short.", "This password is too common.", "entirely numeric"]),
        ("password", ["This password is too common."]),
        ("weakling-user", ["too similar to the username"]),
    ],
)
def test_register_user_refuses_weak_passwords_with_the_validators_messages(stdin, password, messages):
    stdin(password + "\n")
    with pytest.raises(CommandError) as caught:
        run("register_user", "--username", "weakling-user", "--email", "w@example.com", "--password-stdin")

    assert str(caught.value).startswith("password: ")
    for message in messages:
        assert message in str(caught.value)
    assert not User.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--username", "taken", "--email", "new@example.com"],
            "username: A user with that username already exists.",
        ),
        (
            ["--username", "TAKEN", "--email", "new@example.com"],
            "username: A user with that username already exists.",
        ),
        (
            ["--username", "new", "--email", "Taken@Example.com"],
            "email: A user with that email already exists.",
        ),
        (["--username", "bad name", "--email", "new@example.com"], "username: Enter a valid username"),
        (["--username", "кирилл", "--email", "new@example.com"], "username: Enter a valid username"),
        (["--username", "new", "--email", "not-an-email"], "email: Enter a valid email address."),
        (["--username", "", "--email", "new@example.com"], "username: This field may not be blank."),
        (["--email", "new@example.com"], "--username is required"),
    ],
)
def test_register_user_refuses_bad_or_taken_fields(stdin, flags, message):
    UserFactory(username="taken", email="taken@example.com")
    stdin(STRONG + "\n")
    with pytest.raises(CommandError, match=message):
        run("register_user", *flags, "--password-stdin")
    assert User.objects.count() == 1
    assert not OutboxEvent.objects.exists()


def test_register_user_without_a_terminal_or_stdin_password_is_an_error(stdin):
    stdin("", tty=False)
    with pytest.raises(CommandError, match="No password"):
        run("register_user", "--username", "x", "--email", "x@example.com")
    assert not User.objects.exists()


def test_register_user_prompts_and_asks_the_password_twice_without_echo(stdin, answers):
    stdin(tty=True)
    asked = answers(
        inputs=["bad name", "carol", "carol@example.com", "Carol C"],
        # mismatch, then weak, then a good one twice
        passwords=[STRONG, "something else", "carol123", "carol123", STRONG, STRONG],
    )
    out, err = run("register_user")

    user = User.objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert user.full_name == "Carol C"
    assert user.check_password(STRONG)
    assert [kind for kind, prompt in asked if "assword" in prompt] == ["getpass"] * 6  # never `input`
    assert "Error: username: Enter a valid username" in err
    assert "Error: Your passwords didn't match." in err
    assert "Error: password: " in err
    assert "Created user carol" in out
    assert len(events("new_user")) == 1


def test_register_user_interrupted_creates_nothing(stdin, monkeypatch):
    stdin(tty=True)

    def interrupt(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupt)
    with pytest.raises(CommandError, match="Cancelled"):
        run("register_user")
    assert not User.objects.exists()


# --- createsuperuser (Django's own) --------------------------------------------------------


def test_createsuperuser_noinput_with_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", STRONG)
    call_command(
        "createsuperuser", interactive=False, username="root", email="Root@Example.com", stdout=io.StringIO()
    )

    user = User.objects.get(username="root")
    assert (user.email, user.is_superuser, user.is_staff) == ("root@example.com", True, True)
    tokens = api_login("root", STRONG).json()
    me = bearer(tokens["access"]).get(ME).json()
    assert me["is_admin"] is True
    assert me["username"] == "root"


def test_createsuperuser_noinput_takes_every_field_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "envroot")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "envroot@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", STRONG)
    call_command("createsuperuser", "--noinput", stdout=io.StringIO())

    assert User.objects.get(username="envroot").is_superuser
    assert api_login("envroot@example.com", STRONG).status_code == 200


def test_createsuperuser_interactive(answers):
    answers(inputs=["rooty", "rooty@example.com"], passwords=[STRONG, STRONG])
    call_command("createsuperuser", stdin=FakeStdin(tty=True), stdout=io.StringIO(), stderr=io.StringIO())

    user = User.objects.get(username="rooty")
    assert user.is_superuser
    assert user.check_password(STRONG)


def test_createsuperuser_refuses_a_username_taken_in_another_case(monkeypatch):
    UserFactory(username="root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", STRONG)
    with pytest.raises(CommandError, match="A user with that username already exists"):
        call_command("createsuperuser", interactive=False, username="ROOT", email="r2@example.com")
    assert User.objects.count() == 1


# --- list_users ----------------------------------------------------------------------------


@pytest.fixture
def population(db: Any) -> dict[str, User]:
    users = {
        "ann": UserFactory(username="ann", email="ann@example.com", full_name="Ann Smith"),
        "ben": UserFactory(
            username="ben", email="ben@example.com", full_name="Ben Jones", roles=["user", "admin"]
        ),
        "cat": UserFactory(
            username="cat", email="cat@corp.test", full_name="Cat Smith", roles=["user", "moderator"]
        ),
    }
    User.objects.filter(username="cat").update(is_active=False)
    return users


def test_list_users_prints_a_table(population):
    out, _ = run("list_users")

    lines = out.splitlines()
    assert lines[0].split() == ["USERNAME", "EMAIL", "ROLES", "ACTIVE", "DELETED", "CREATED", "LAST", "LOGIN"]
    assert [line.split()[0] for line in lines[1:-1]] == ["ann", "ben", "cat"]  # oldest first
    ben = lines[2].split()
    assert ben[:5] == ["ben", "ben@example.com", "admin,user", "yes", "-"]
    assert ben[-1] == "-"  # never logged in
    assert lines[3].split()[2:4] == ["moderator,user", "no"]
    assert lines[-1] == "3 users."


def test_list_users_shows_deleted_and_last_login(population):
    User.objects.filter(username="ann").update(last_login="2030-01-02T03:04:00Z")
    User.objects.filter(username="ann").update(is_superuser=True)  # ben is not the last admin
    call_command("delete_user", "ben", "--yes", stdout=io.StringIO())

    out, _ = run("list_users")
    rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert rows["ann"].endswith("2030-01-02 03:04")
    deleted = User.objects.get(username="ben").deleted_at
    assert f"{deleted:%Y-%m-%d %H:%M}" in rows["ben"]
    assert "  no  " in rows["ben"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--role", "admin"], ["ben"]),
        (["--role", "moderator"], ["cat"]),
        (["--active"], ["ann", "ben"]),
        (["--inactive"], ["cat"]),
        (["--search", "SMITH"], ["ann", "cat"]),
        (["--search", "corp.test"], ["cat"]),
        (["--search", "BEN"], ["ben"]),
        (["--search", "smith", "--active"], ["ann"]),
        (["--role", "nobody-has-this"], []),
    ],
)
def test_list_users_filters(population, options, expected):
    out, _ = run("list_users", *options)
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == expected
    data = json.loads(run("list_users", "--json", *options)[0])
    assert [row["username"] for row in data] == expected


def test_list_users_active_and_inactive_exclude_each_other(population):
    with pytest.raises(CommandError):
        run("list_users", "--active", "--inactive")


def test_list_users_json_for_scripts(population):
    ben = population["ben"]
    User.objects.filter(username="ann").update(is_superuser=True)  # ben is not the last admin
    call_command("delete_user", "ben", "--yes", stdout=io.StringIO())
    ben.refresh_from_db()

    data = json.loads(run("list_users", "--json")[0])

    assert [row["username"] for row in data] == ["ann", "ben", "cat"]
    assert data[1] == {
        "id": str(ben.id),
        "username": "ben",
        "email": "ben@example.com",
        "email_verified": False,
        "email_pending": None,
        "full_name": "Ben Jones",
        "roles": ["admin", "user"],
        "is_active": False,
        "is_admin": True,
        "mfa": False,
        "is_staff": True,
        "is_superuser": False,
        "deleted_at": ben.deleted_at.isoformat().replace("+00:00", "Z"),
        "created_at": ben.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": ben.updated_at.isoformat().replace("+00:00", "Z"),
        "last_login": None,
    }
    # The same shape as the administrators' API shows.
    assert set(data[1]) == set(AdminUserSerializer().fields)
    assert data[0]["deleted_at"] is None
    assert json.loads(run("list_users", "--json", "--role", "none")[0]) == []


def test_list_users_streams_in_chunks_with_one_roles_query_per_chunk(population, django_assert_num_queries):
    UserFactory.create_batch(4)  # 7 users
    # Chunks of 2: one users query, then the roles of each of the 4 chunks.
    with django_assert_num_queries(1 + 4):
        out, _ = run("list_users", "--chunk-size", "2")
    assert out.splitlines()[-1] == "7 users."
    with django_assert_num_queries(1 + 1):
        run("list_users", "--json", "--chunk-size", "2000")


# --- delete_user ---------------------------------------------------------------------------


def test_delete_user_soft_deletes_like_delete_me(user, login, password, django_capture_on_commit_callbacks):
    first, second = login(user), login(user)
    assert bearer(first["access"]).get(ME).status_code == 200  # the cache is warm

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("delete_user", user.username, "--yes")

    row = User.objects.get(id=user.id)
    assert row.deleted_at is not None
    assert not row.is_active
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert set(AuthSession.objects.filter(user=user).values_list("revoke_reason", flat=True)) == {"deleted"}
    for tokens in (first, second):
        assert bearer(tokens["access"]).get(ME).status_code == 401
    (event,) = events("user_deleted")
    assert event.payload["user_id"] == str(user.id)
    assert event.payload["event_id"] == str(event.id)
    assert "deleted_at" in event.payload
    assert "hard" not in event.payload
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.DELETED).count() == 1
    assert f"Deleted {user.username}" in out
    # An operator's deletion is an administrator's: not the owner's to undo (a ban is a ban) ...
    restored = APIClient().post(RESTORE, {"username": user.username, "password": password}, format="json")
    assert restored.status_code == 401
    assert restored.json()["detail"] == "Invalid username or password."
    # ... but an administrator's, within the window.
    assert "An administrator can restore it" in out
    services.user_restore(user_id=user.id)
    assert User.objects.get(id=user.id).is_active


def test_delete_user_hard_removes_for_good(user, login, password, django_capture_on_commit_callbacks):
    tokens = login(user)
    assert bearer(tokens["access"]).get(ME).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run("delete_user", user.email.upper(), "--hard", "--yes")

    assert not User.objects.filter(id=user.id).exists()
    assert not AuthSession.objects.filter(user_id=user.id).exists()
    assert bearer(tokens["access"]).get(ME).status_code == 401
    assert (
        APIClient().post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code
        == 401
    )
    (event,) = events("user_deleted")
    assert event.payload == {
        "event_id": str(event.id),
        "occurred_at": event.payload["occurred_at"],
        "user_id": str(user.id),
        "hard": True,
    }
    purge = AuditEvent.objects.get(kind=AuditEvent.Kind.PURGED)
    assert purge.detail == {"detail_user_id": str(user.id), "hard": True}
    assert "Removed" in out
    assert api_login(user.username, password).status_code == 401


def test_delete_user_hard_also_removes_a_soft_deleted_user(user):
    run("delete_user", user.username, "--yes")
    run("delete_user", str(user.id), "--hard", "--yes")
    assert not User.objects.filter(id=user.id).exists()
    assert [e.payload.get("hard") for e in events("user_deleted")] == [None, True]


def test_delete_user_by_id(user):
    run("delete_user", str(user.id), "--yes")
    assert User.objects.get(id=user.id).deleted_at is not None


def test_delete_user_asks_for_confirmation(user, monkeypatch):
    prompts: list[str] = []

    def say(answer: str):
        def fake_input(prompt: str = "") -> str:
            prompts.append(prompt)
            return answer

        monkeypatch.setattr("builtins.input", fake_input)

    say("n")
    with pytest.raises(CommandError, match="Cancelled"):
        run("delete_user", user.username, "--hard")
    assert User.objects.get(id=user.id).deleted_at is None
    assert not OutboxEvent.objects.filter(key="user_deleted").exists()
    assert prompts == [f"Remove for good {user.username} <{user.email}>? [y/N] "]

    say("")  # Enter: the default is no
    with pytest.raises(CommandError, match="Cancelled"):
        run("delete_user", user.username)
    assert User.objects.get(id=user.id).deleted_at is None

    say("y")
    run("delete_user", user.username)
    assert User.objects.get(id=user.id).deleted_at is not None
    assert prompts[-1] == f"Delete {user.username} <{user.email}>? [y/N] "


def test_delete_user_unknown(db):
    for name in ("nobody", "nobody@example.com", str(uuid.uuid4()), ""):
        with pytest.raises(CommandError, match="No user"):
            run("delete_user", name, "--yes")


def test_delete_user_twice_soft_changes_nothing_the_second_time(user):
    run("delete_user", user.username, "--yes")
    deleted_at = User.objects.get(id=user.id).deleted_at

    out, _ = run("delete_user", user.username, "--yes")

    assert "already deleted" in out
    assert User.objects.get(id=user.id).deleted_at == deleted_at
    assert len(events("user_deleted")) == 1


def test_a_username_that_looks_like_an_id_wins_over_the_id(db):
    other = UserFactory()
    lookalike = UserFactory(username=str(other.id))
    run("delete_user", str(other.id), "--yes")
    assert User.objects.get(id=lookalike.id).deleted_at is not None
    assert User.objects.get(id=other.id).deleted_at is None


def test_createsuperuser_is_the_accounts_command_not_the_model_manager():
    """Django's `createsuperuser` calls `User.objects.create_superuser`; ours calls the service."""
    from django.core.management import get_commands

    assert get_commands()["createsuperuser"] == "accounts"


def test_createsuperuser_goes_through_the_service(monkeypatch, django_capture_on_commit_callbacks):
    from accounts.models import AuditEvent, User
    from notifications.models import OutboxEvent

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough pass phrase 9")
    call_command(
        "createsuperuser", interactive=False, username="chief", email="Chief@Example.com", verbosity=0
    )
    chief = User.objects.get(username="chief")
    assert chief.is_superuser
    assert chief.is_staff
    assert chief.email == "chief@example.com"
    assert chief.roles == ["admin", "user"]
    assert OutboxEvent.objects.filter(key="new_user", payload__user_id=str(chief.id)).count() == 1
    assert AuditEvent.objects.filter(user=chief, kind="registered").count() == 1
