"""`bulk_create_users`: rows checked first, written in batches, users brought over from the old services.

The issue "Admin commands" → bulk_create_users. Speed and memory are measured
in benchmarks/bulk_users.py; here, the rules, with tens of rows.
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher, check_password, make_password
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import user_checks
from accounts.models import AuditEvent, User
from accounts.services import bulk_create
from accounts.tests.factories import UserFactory
from notifications.models import OutboxEvent

STRONG = "correct horse battery staple"
OLD_PASSWORD = "old passlib password 1"
# What passlib stored in the earlier services, for OLD_PASSWORD (cost 12, and cost 4 for speed).
PASSLIB_12 = "$2b$12$sXCu30ckQp8z8xYmyfxEI.xmuOHZN43cnTPB6.UVWRroDJ1acsHLS"
PASSLIB_4 = "$2b$04$4sI3Yo8XZYmQs4oeCE5he.EORBhYyIwDyCqEyv4ZlfiZVwpPetWG."
PRODUCTION_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "accounts.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]

pytestmark = pytest.mark.django_db


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class PidHasher(MD5PasswordHasher):
    """MD5 whose salt names the process that hashed: tells where the hashing ran."""

    algorithm = "pidmd5"

    def salt(self) -> str:
        return f"pid{os.getpid()}"


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = options.pop("stdout", io.StringIO()), options.pop("stderr", io.StringIO())
    try:
        call_command("bulk_create_users", *args, stdout=out, stderr=err, workers=1, **options)
    except CommandError as exc:
        exc.out, exc.err = out.getvalue(), err.getvalue()  # type: ignore[attr-defined]
        raise
    return out.getvalue(), err.getvalue()


def fails(*args: str, **options: Any) -> tuple[str, str, str]:
    with pytest.raises(CommandError) as caught:
        run(*args, **options)
    return str(caught.value), caught.value.out, caught.value.err  # type: ignore[attr-defined]


def row(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "username": f"imported{n}",
        "email": f"imported{n}@example.com",
        "password_hash": PASSLIB_4,
        **extra,
    }


def nothing_written(users_before: int = 0) -> None:
    assert User.objects.count() == users_before
    assert not OutboxEvent.objects.exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.REGISTERED).exists()


# --- the happy path ------------------------------------------------------------------------

MIXED = [
    {"username": "plain", "email": "Plain@Example.com", "full_name": "Plain Text", "password": STRONG},
    {"username": "passlib", "email": "passlib@example.com", "password_hash": PASSLIB_4, "role": "moderator"},
    {"username": "djangohash", "email": "dj@example.com", "password_hash": "md5$salt$" + "0" * 32},
    {"username": "chief", "email": "chief@example.com", "password": STRONG, "role": ["admin", "moderator"]},
]


def check_mixed_import() -> None:
    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"plain", "passlib", "djangohash", "chief"}
    assert users["plain"].email == "plain@example.com"
    assert users["plain"].full_name == "Plain Text"
    assert users["plain"].password.startswith("md5$")  # hashed with the first hasher
    assert check_password(STRONG, users["plain"].password)
    assert users["passlib"].password == "bcrypt$" + PASSLIB_4
    assert check_password(OLD_PASSWORD, users["passlib"].password)
    assert users["djangohash"].password == "md5$salt$" + "0" * 32  # Django's formats are kept
    assert {name: u.roles for name, u in users.items()} == {
        "plain": ["user"],
        "passlib": ["moderator", "user"],
        "djangohash": ["user"],
        "chief": ["admin", "moderator", "user"],
    }
    assert {name for name, u in users.items() if u.is_staff} == {"chief"}
    assert all(u.is_active and u.deleted_at is None and not u.is_superuser for u in users.values())
    # One new_user event per user, with the fields API.md names for it.
    events = {e.payload["username"]: e for e in OutboxEvent.objects.all()}
    assert set(events) == set(users)
    for name, event in events.items():
        assert event.key == "new_user"
        assert event.topic == django_settings.KAFKA_TOPIC_DATA
        assert event.published_at is None
        user = users[name]
        assert event.payload == {
            "event_id": str(event.id),
            "occurred_at": event.payload["occurred_at"],
            "user_id": str(user.id),
            "username": user.username,
            "full_name": user.full_name,
            "email": user.email,
            "email_verified": user.email_verified,
            "created_at": user.created_at.isoformat(),
        }
        assert datetime.fromisoformat(event.payload["occurred_at"]) >= user.created_at
    registered = AuditEvent.objects.filter(kind=AuditEvent.Kind.REGISTERED)
    assert sorted(registered.values_list("user__username", flat=True)) == sorted(users)


def test_json_lines_create_users_with_roles_events_and_audit(tmp_path):
    out, err = run(str(write_lines(tmp_path / "users.jsonl", MIXED)))

    check_mixed_import()
    assert out.splitlines() == ["4 rows checked: 4 good, 0 bad.", "Created 4 users."]
    assert err == ""  # no progress bar and no report when stderr is not a terminal


def test_a_json_array_creates_the_same(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps(MIXED, indent=2))
    run(str(path))
    check_mixed_import()


def test_standard_input(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(MIXED)))
    run("-")
    check_mixed_import()


def test_imported_users_log_in_over_the_api(tmp_path):
    run(str(write_lines(tmp_path / "u.jsonl", MIXED)))
    for username, password in (("plain", STRONG), ("passlib", OLD_PASSWORD), ("chief", STRONG)):
        response = APIClient().post(
            "/api/v1/auth/login", {"username": username, "password": password}, format="json"
        )
        assert response.status_code == 200, (username, response.content)
        me = (
            APIClient(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}").get("/api/v1/users/me").json()
        )
        assert me["username"] == username
        assert me["is_admin"] is (username == "chief")


def test_batched_writes_do_not_query_per_row(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_create, "BATCH_SIZE", 1000)

    def queries(count: int, name: str) -> int:
        rows = [row(n, username=f"{name}{n}", email=f"{name}{n}@example.com") for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            run(str(write_lines(tmp_path / f"{name}.jsonl", rows)))
        return len(captured)

    few, many = queries(3, "few"), queries(60, "many")

    assert User.objects.count() == 63
    # The same queries whether 3 rows or 60 (SQLite splits a large INSERT; PostgreSQL does not).
    assert many <= few + (8 if connection.vendor == "sqlite" else 0)
    assert many < 25


def test_batches_of_the_batch_size(tmp_path, monkeypatch):
    """Uniqueness checked per batch, inserts per batch: still every row, and every clash, across batches."""
    monkeypatch.setattr(bulk_create, "BATCH_SIZE", 4)
    UserFactory(username="imported9", email="elsewhere@example.com")
    rows = [row(n) for n in range(12)]
    rows.append(row(99, email="imported2@example.com"))  # line 13: clash with line 3, two batches earlier
    path = write_lines(tmp_path / "u.jsonl", rows)

    _, _, err = fails(str(path))
    assert err.splitlines() == [
        "line 10: username: A user with that username already exists.",
        "line 13: email: Duplicate of line 3.",
    ]
    nothing_written(1)

    _, _, err = fails(str(path), continue_on_error=True)
    assert User.objects.count() == 1 + 11
    assert OutboxEvent.objects.filter(key="new_user").count() == 11


# --- every bad row, by line and reason -----------------------------------------------------


def test_every_bad_row_is_reported_and_nothing_is_written(tmp_path):
    UserFactory(username="Existing", email="existing@example.com")
    gone = UserFactory(username="gone", email="gone@example.com")
    User.objects.filter(id=gone.id).update(deleted_at="2030-01-01T00:00:00Z", is_active=False)
    rows: list[Any] = [
        row(1),  # 1 good
        row(2, email="not-an-email"),  # 2
        row(3, username="bad name"),  # 3
        {"email": "x4@example.com", "password": STRONG},  # 4
        row(5, role="wizard"),  # 5
        {"username": "u6", "email": "u6@example.com", "password": "123"},  # 6
        row(7, password=STRONG),  # 7 both
        {"username": "u8", "email": "u8@example.com"},  # 8 neither
        row(9, password_hash="plain text"),  # 9
        ["not", "an", "object"],  # 10
        "{not json",  # 11
        row(12, extra="x"),  # 12
        row(13, username="IMPORTED1"),  # 13 duplicate in the file, other case
        row(14, email="Imported1@Example.com"),  # 14
        row(15, username="existing"),  # 15 in the database, other case
        row(16, email="gone@example.com"),  # 16 held by a soft-deleted account
        row(17, username=5),  # 17
        "",  # blank lines are skipped
        row(19, full_name="x" * 256),  # 19
        row(20),  # 20 good
    ]
    message, out, err = fails(str(write_lines(tmp_path / "users.jsonl", rows)))

    assert err.splitlines() == [
        "line 2: email: Enter a valid email address.",
        "line 3: username: Enter a valid username: English letters, digits and . + - _ only.",
        "line 4: username: This field is required.",
        "line 5: role: Unknown role: wizard.",
        "line 6: password: This password is too short. It must contain at least 8 characters.",
        "line 6: password: This password is too common.",
        "line 6: password: This password is entirely numeric.",
        "line 7: password: Give either password or password_hash, not both.",
        "line 8: password: This field is required (or give password_hash).",
        f"line 9: password_hash: Not a password hash this service can check: use {user_checks.HASH_FORMATS}.",
        "line 10: Each row must be a JSON object.",
        "line 11: Invalid JSON: Expecting property name enclosed in double quotes (column 2).",
        "line 12: extra: Unknown field (expected username, email, full_name, role, password, password_hash, email_verified).",
        "line 13: username: Duplicate of line 1.",
        "line 14: email: Duplicate of line 1.",
        "line 15: username: A user with that username already exists.",
        "line 16: email: A user with that email already exists.",
        "line 17: username: Must be a string.",
        "line 19: full_name: Ensure this value has at most 255 characters (it has 256).",
    ]
    assert message == "17 of 19 rows failed."
    assert out.splitlines() == [
        "19 rows checked: 2 good, 17 bad.",
        "Nothing was written: fix the rows above, or use --continue-on-error to apply the good ones.",
    ]
    nothing_written(2)


def test_a_json_array_reports_the_line_each_row_starts_on(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps([row(1), row(2, email="nope"), row(3), {"username": "x"}], indent=2))
    # indent=2: "[" on line 1, then 5 lines per row.
    _, _, err = fails(str(path))
    assert err.splitlines() == [
        "line 7: email: Enter a valid email address.",
        "line 17: email: This field is required.",
        "line 17: password: This field is required (or give password_hash).",
    ]
    nothing_written()


@pytest.mark.parametrize(
    ("text", "report"),
    [
        ('[{"username": "a"},\n{"username": ', "line 2: Invalid JSON: Expecting value."),
        ('[\n{"username": "a"}\n{"username": "b"}]', "line 3: Invalid JSON: expected , or ] after a row."),
        ('[{"username": "a"},\n]', "line 2: Invalid JSON: Expecting value."),
        ('[{"username": "a"}', "line 1: Unexpected end of file: the array is not closed with ]."),
        ('[{"username": "a"}]\n[]', "line 2: Invalid JSON: unexpected data after the closing ]."),
    ],
)
def test_a_broken_json_array_is_reported_where_it_breaks(tmp_path, text, report):
    path = tmp_path / "users.json"
    path.write_text(text)
    _, _, err = fails(str(path))
    assert report in err.splitlines()
    nothing_written()


@pytest.mark.parametrize(
    "password_hash",
    [
        "sha1$salt$0123456789abcdef0123456789abcdef01234567",  # not a configured hasher
        "$2b$12$tooshort",
        "bcrypt$not-a-bcrypt-hash",
        "pbkdf2_sha256$many$salt$hash",
        "!unusable",
        "",
    ],
)
def test_hashes_that_could_never_be_checked_are_refused(tmp_path, password_hash):
    _, _, err = fails(str(write_lines(tmp_path / "u.jsonl", [row(1, password_hash=password_hash)])))
    assert err.splitlines() == [
        f"line 1: password_hash: Not a password hash this service can check: use {user_checks.HASH_FORMATS}."
    ]
    nothing_written()


# --- --continue-on-error, --dry-run --------------------------------------------------------


def test_continue_on_error_writes_the_good_rows_and_still_fails(tmp_path):
    rows = [row(1), row(2, email="bad"), row(3), row(4, username="IMPORTED3")]
    message, out, err = fails(str(write_lines(tmp_path / "u.jsonl", rows)), continue_on_error=True)

    assert sorted(User.objects.values_list("username", flat=True)) == ["imported1", "imported3"]
    assert OutboxEvent.objects.filter(key="new_user").count() == 2
    assert err.splitlines() == [
        "line 2: email: Enter a valid email address.",
        "line 4: username: Duplicate of line 3.",
    ]
    assert out.splitlines() == ["4 rows checked: 2 good, 2 bad.", "Created 2 users."]
    assert message == "2 of 4 rows failed."


def test_dry_run_checks_everything_and_writes_nothing(tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [row(1), row(2, password=STRONG, password_hash=None)])
    out, err = run(str(good), dry_run=True)
    assert out.splitlines() == ["2 rows checked: 2 good, 0 bad.", "Dry run: nothing was written."]
    nothing_written()

    bad = write_lines(tmp_path / "bad.jsonl", [row(1), row(2, email="x")])
    _, out, err = fails(str(bad), dry_run=True)
    assert err.splitlines() == ["line 2: email: Enter a valid email address."]
    assert "Dry run: nothing was written." in out
    nothing_written()


def test_an_empty_file_or_array_creates_nothing_and_succeeds(tmp_path):
    for text in ("", "[]", "\n\n", " [ ] "):
        path = tmp_path / "empty.json"
        path.write_text(text)
        out, _ = run(str(path))
        assert out.splitlines()[0] == "0 rows checked: 0 good, 0 bad."
    nothing_written()


def test_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "nope.json"))


# --- a clash between the check and the write -----------------------------------------------


@pytest.fixture
def clash_after_check(monkeypatch):
    """Someone creates `imported2` after the check pass and before the write pass."""
    original = bulk_create._create_check

    def check_then_clash(*args: Any, **kwargs: Any) -> Any:
        bad = original(*args, **kwargs)
        UserFactory(username="imported2", email="someone@example.com")
        return bad

    monkeypatch.setattr(bulk_create, "_create_check", check_then_clash)


@pytest.mark.usefixtures("clash_after_check")
def test_a_clash_during_the_write_rolls_everything_back(tmp_path):
    _, _, err = fails(str(write_lines(tmp_path / "u.jsonl", [row(1), row(2), row(3)])))
    assert err.startswith("Nothing was written: a row clashes with an account created meanwhile")
    assert list(User.objects.values_list("username", flat=True)) == ["imported2"]
    assert not OutboxEvent.objects.exists()


@pytest.mark.usefixtures("clash_after_check")
def test_a_clash_during_the_write_with_continue_on_error_skips_only_that_row(tmp_path):
    _, _, err = fails(
        str(write_lines(tmp_path / "u.jsonl", [row(1), row(2), row(3)])), continue_on_error=True
    )
    assert err.splitlines() == ["line 2: username: A user with that username or email already exists."]
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "imported1@example.com",
        "imported3@example.com",
        "someone@example.com",
    ]
    assert OutboxEvent.objects.count() == 2


# --- users from the old services -----------------------------------------------------------


@pytest.mark.slow
def test_a_migrated_user_logs_in_with_the_old_password_and_the_hash_is_upgraded(tmp_path, settings):
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    run(
        str(
            write_lines(
                tmp_path / "old.jsonl",
                [{"username": "veteran", "email": "v@example.com", "password_hash": PASSLIB_12}],
            )
        )
    )
    assert User.objects.get(username="veteran").password == "bcrypt$" + PASSLIB_12

    login = APIClient().post(
        "/api/v1/auth/login", {"username": "veteran", "password": OLD_PASSWORD}, format="json"
    )

    assert login.status_code == 200, login.content
    upgraded = User.objects.get(username="veteran").password
    assert upgraded.startswith("bcrypt_sha256$")
    assert check_password(OLD_PASSWORD, upgraded)
    wrong = APIClient().post(
        "/api/v1/auth/login", {"username": "veteran", "password": "guess"}, format="json"
    )
    assert wrong.status_code == 401


def test_a_django_argon2_hash_is_kept_and_checkable(tmp_path, settings):
    from django.contrib.auth.hashers import Argon2PasswordHasher

    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    argon2_hash = Argon2PasswordHasher().encode(OLD_PASSWORD, "saltsaltsalt")
    run(str(write_lines(tmp_path / "u.jsonl", [row(1, password_hash=argon2_hash)])))
    stored = User.objects.get().password
    assert stored == argon2_hash
    assert check_password(OLD_PASSWORD, stored)


@pytest.mark.parametrize("ident", ["$2a$", "$2b$", "$2y$"])
def test_each_bcrypt_flavour_is_accepted_and_checkable(tmp_path, settings, ident):
    settings.PASSWORD_HASHERS = PRODUCTION_HASHERS
    old = ident + PASSLIB_4[4:]
    run(str(write_lines(tmp_path / "u.jsonl", [row(1, password_hash=old)])))
    stored = User.objects.get().password
    assert stored == "bcrypt$" + old
    assert check_password(OLD_PASSWORD, stored)
    assert not check_password("not it", stored)


# --- hashing across processes, progress ----------------------------------------------------


@pytest.mark.parametrize(("workers", "in_this_process"), [(1, True), (2, False)])
def test_plaintext_passwords_are_hashed_by_the_workers(tmp_path, settings, workers, in_this_process):
    settings.PASSWORD_HASHERS = [f"{__name__}.PidHasher", *settings.PASSWORD_HASHERS]
    rows = [row(n, password=f"{STRONG} {n}", password_hash=None) for n in range(12)]
    call_command(
        "bulk_create_users",
        str(write_lines(tmp_path / "u.jsonl", rows)),
        workers=workers,
        stdout=io.StringIO(),
    )

    users = list(User.objects.all())
    assert len(users) == 12
    pids = {user.password.split("$")[1] for user in users}
    assert (pids == {f"pid{os.getpid()}"}) is in_this_process
    for user in users:
        assert check_password(f"{STRONG} {user.username.removeprefix('imported')}", user.password)


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(CommandError):
        call_command("bulk_create_users", str(tmp_path / "x.json"), "--workers", "0")


def test_a_progress_bar_on_a_terminal_only(tmp_path):
    path = write_lines(tmp_path / "u.jsonl", [row(1), row(2, email="bad"), row(3)])
    _, _, err = fails(str(path), stderr=TTY(), continue_on_error=True)
    assert "Checking: 3 rows" in err  # tqdm's bar
    assert "Creating: 100%" in err
    assert "line 2: email: Enter a valid email address." in err

    path = write_lines(tmp_path / "v.jsonl", [row(4), row(5, email="bad"), row(6)])
    _, _, err = fails(str(path), stderr=io.StringIO(), continue_on_error=True)
    assert err == "line 2: email: Enter a valid email address.\n"
    assert User.objects.count() == 4


def test_password_hash_normalize_keeps_django_hashes_and_prefixes_passlib_ones():
    django_hash = make_password(STRONG)
    assert user_checks.password_hash_normalize(django_hash) == django_hash
    assert user_checks.password_hash_normalize(PASSLIB_12) == "bcrypt$" + PASSLIB_12
    assert user_checks.password_hash_normalize(" bcrypt$" + PASSLIB_12 + "\n") == "bcrypt$" + PASSLIB_12
    with pytest.raises(ValueError, match="usable"):
        user_checks.password_hash_normalize(make_password(None))


def test_the_write_pass_normalises_rows_exactly_as_the_check_pass():
    """The write pass skips the validators (`_checked_row`); its values must be the check's."""
    rows = [
        *MIXED,
        {
            "username": "  spaced  ",
            "email": "  MiXed@Example.COM ",
            "full_name": "  Name  ",
            "password": STRONG,
        },
        {
            "username": "r",
            "email": "r@example.com",
            "role": [" moderator ", "user"],
            "password_hash": PASSLIB_4,
        },
        {
            "username": "n",
            "email": "n@example.com",
            "full_name": None,
            "role": None,
            "password_hash": PASSLIB_12,
        },
    ]
    roles = user_checks.known_roles()
    for line, data in enumerate(rows, start=1):
        checked, errors = user_checks.new_user_clean(data, line=line, known_roles=roles)
        assert errors == []
        assert user_checks.checked_row(data, line) == checked


def test_a_file_changed_between_the_passes_writes_nothing(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "u.jsonl", [row(1), row(2)])
    original = bulk_create._create_check

    def check_then_edit(*args: Any, **kwargs: Any) -> Any:
        bad = original(*args, **kwargs)
        write_lines(path, [row(1), row(2, email="now-bad"), row(3)])
        os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
        return bad

    monkeypatch.setattr(bulk_create, "_create_check", check_then_edit)
    _, _, err = fails(str(path))
    assert err == "The file changed while it was being checked; nothing was written.\n"
    nothing_written()


def test_with_a_broker_the_outbox_relay_is_queued_once_after_commit(
    tmp_path, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """As `event_emit` does: the relay publishes the new_user events as soon as the import commits."""
    from notifications import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued: list[int] = []
    monkeypatch.setattr(tasks.publish_outbox, "delay", lambda: queued.append(OutboxEvent.objects.count()))
    monkeypatch.setattr(bulk_create, "BATCH_SIZE", 2)
    with django_capture_on_commit_callbacks(execute=True):
        run(str(write_lines(tmp_path / "u.jsonl", [row(n) for n in range(5)])))
    assert queued == [5]  # once, for 3 batches, with every event stored
