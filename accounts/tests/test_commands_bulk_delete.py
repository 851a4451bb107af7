"""`bulk_delete_users`: soft or hard, through the API's services; not-found and bad entries reported.

The issue "Admin commands" → bulk_delete_users: "soft by default, --hard,
reports the ones not found, same validation, dry-run and exit-status rules",
and "revoke sessions and invalidate caches exactly as the API does".
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent, AuthSession, User
from accounts.services import bulk_delete
from accounts.tests.factories import UserFactory
from accounts.tests.support import bearer
from notifications.models import OutboxEvent

ME = "/api/v1/users/me"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_per_request")]


def run(path: Path | str, *args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("bulk_delete_users", str(path), *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        exc.out, exc.err = out.getvalue(), err.getvalue()  # type: ignore[attr-defined]
        raise
    return out.getvalue(), err.getvalue()


def fails(path: Path | str, *args: str, **options: Any) -> tuple[str, str, str]:
    with pytest.raises(CommandError) as caught:
        run(path, *args, **options)
    return str(caught.value), caught.value.out, caught.value.err  # type: ignore[attr-defined]


def lines(path: Path, entries: list[Any]) -> Path:
    """A JSON array with one entry per line: entry i (from 0) is on line i + 2."""
    path.write_text("[\n" + ",\n".join(json.dumps(entry) for entry in entries) + "\n]\n")
    return path


@pytest.fixture
def people(db: Any) -> dict[str, User]:
    return {
        name: UserFactory(username=name, email=f"{name}@example.com") for name in ("ann", "ben", "cat", "dan")
    }


def deleted_names() -> list[str]:
    return sorted(User.objects.filter(deleted_at__isnull=False).values_list("username", flat=True))


def test_soft_delete_by_username_email_id_and_objects(
    people, tmp_path, login, django_capture_on_commit_callbacks
):
    tokens = {name: login(people[name]) for name in ("ann", "ben", "cat")}
    for pair in tokens.values():
        assert bearer(pair["access"]).get(ME).status_code == 200  # the cache is warm
    path = lines(tmp_path / "d.json", ["ANN", {"email": "Ben@Example.com"}, {"id": str(people["cat"].id)}])

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run(path)

    assert deleted_names() == ["ann", "ben", "cat"]
    assert not User.objects.filter(username__in=["ann", "ben", "cat"], is_active=True).exists()
    assert User.objects.get(username="dan").deleted_at is None
    assert not AuthSession.objects.filter(
        revoked_at__isnull=True, user__username__in=["ann", "ben", "cat"]
    ).exists()
    for pair in tokens.values():
        assert bearer(pair["access"]).get(ME).status_code == 401
    events = OutboxEvent.objects.filter(key="user_deleted")
    assert sorted(e.payload["user_id"] for e in events) == sorted(
        str(people[n].id) for n in ("ann", "ben", "cat")
    )
    assert all("deleted_at" in e.payload and e.payload["event_id"] == str(e.id) for e in events)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.DELETED).count() == 3
    assert out.splitlines() == ["3 rows checked: 3 good, 0 bad.", "Deleted: 3 users."]
    assert err == ""


def test_hard_delete_removes_for_good(people, tmp_path, login, django_capture_on_commit_callbacks):
    tokens = login(people["ann"])
    assert bearer(tokens["access"]).get(ME).status_code == 200
    path = lines(tmp_path / "d.json", ["ann", "ben@example.com"])

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run(path, "--hard")

    assert sorted(User.objects.values_list("username", flat=True)) == ["cat", "dan"]
    assert not AuthSession.objects.filter(user_id=people["ann"].id).exists()
    assert bearer(tokens["access"]).get(ME).status_code == 401
    payloads = sorted(
        (e.payload["user_id"], e.payload["hard"]) for e in OutboxEvent.objects.filter(key="user_deleted")
    )
    assert payloads == sorted([(str(people["ann"].id), True), (str(people["ben"].id), True)])
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PURGED).count() == 2
    assert "Removed for good: 2 users." in out


def test_not_found_is_reported_and_nothing_is_deleted(people, tmp_path):
    path = lines(
        tmp_path / "d.json",
        ["ann", "nobody", "ghost@example.com", {"id": "00000000-0000-0000-0000-000000000000"}],
    )

    message, out, err = fails(path)

    assert err.splitlines() == [
        "line 3: Not found: nobody.",
        "line 4: Not found: ghost@example.com.",
        "line 5: Not found: 00000000-0000-0000-0000-000000000000.",
    ]
    assert message == "3 of 4 rows failed."
    assert "Nothing was written" in out
    assert deleted_names() == []
    assert not OutboxEvent.objects.exists()


def test_continue_on_error_deletes_the_found_ones_and_still_fails(people, tmp_path):
    path = lines(tmp_path / "d.json", ["ann", "nobody", "cat"])

    message, out, err = fails(path, "--continue-on-error")

    assert deleted_names() == ["ann", "cat"]
    assert OutboxEvent.objects.filter(key="user_deleted").count() == 2
    assert err.splitlines() == ["line 3: Not found: nobody."]
    assert message == "1 of 3 rows failed."
    assert "Deleted: 2 users." in out


@pytest.mark.parametrize(
    ("entry", "report"),
    [
        (42, "Each entry must be a username, an email, an id, or an object with one of them."),
        (None, "Each entry must be a username, an email, an id, or an object with one of them."),
        ("", "An empty name."),
        ({}, "Give exactly one of username, email, id."),
        ({"username": "ann", "email": "ann@example.com"}, "Give exactly one of username, email, id."),
        ({"username": 7}, "username: Must be a non-empty string."),
        ({"name": "ann"}, "name: Unknown field (expected one of username, email, id)."),
        ({"username": "ann@example.com"}, "Not found: ann@example.com."),  # a username never has an @
        ({"email": "ann"}, "Not found: ann."),
        ({"id": "ann"}, "Not found: ann."),
    ],
)
def test_bad_entries_are_reported_by_line(people, tmp_path, entry, report):
    path = lines(tmp_path / "d.json", ["ben", entry])
    _, _, err = fails(path)
    assert f"line 3: {report}" in err.splitlines()
    assert deleted_names() == []


def test_the_same_user_twice_is_reported(people, tmp_path):
    path = lines(tmp_path / "d.json", ["ann", "dan", "Ann@Example.com", {"id": str(people["dan"].id)}])
    _, _, err = fails(path)
    assert err.splitlines() == [
        "line 4: Duplicate of line 2 (the same user).",
        "line 5: Duplicate of line 3 (the same user).",
    ]
    assert deleted_names() == []


def test_dry_run(people, tmp_path):
    out, _ = run(lines(tmp_path / "d.json", ["ann", "ben"]), "--dry-run", "--hard")
    assert out.splitlines() == ["2 rows checked: 2 good, 0 bad.", "Dry run: nothing was written."]
    assert User.objects.count() == 4
    assert not OutboxEvent.objects.exists()

    _, out, err = fails(lines(tmp_path / "e.json", ["ann", "nobody"]), "--dry-run")
    assert err.splitlines() == ["line 3: Not found: nobody."]
    assert deleted_names() == []


def test_already_deleted_users_are_left_alone_by_a_soft_delete_and_removed_by_a_hard_one(people, tmp_path):
    run(lines(tmp_path / "first.json", ["ann"]))
    deleted_at = User.objects.get(username="ann").deleted_at

    out, _ = run(lines(tmp_path / "second.json", ["ann", "ben"]))

    assert "Deleted: 1 user. 1 already deleted, left as they were." in out
    assert User.objects.get(username="ann").deleted_at == deleted_at
    assert OutboxEvent.objects.filter(key="user_deleted").count() == 2  # ann once, ben once

    run(lines(tmp_path / "third.json", ["ann"]), "--hard")
    assert not User.objects.filter(username="ann").exists()


def test_json_lines_from_standard_input(people, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('"ann"\n{"email": "ben@example.com"}\n'))
    run("-")
    assert deleted_names() == ["ann", "ben"]


def test_lookups_are_batched(people, tmp_path, monkeypatch, django_assert_max_num_queries):
    """The check pass asks the database once per batch, not once per entry."""
    monkeypatch.setattr(bulk_delete, "BATCH_SIZE", 2)
    UserFactory.create_batch(6)  # 10 users
    entries = list(User.objects.values_list("username", flat=True))
    with django_assert_max_num_queries(6):  # 11 entries in batches of 2
        result = bulk_delete.users_bulk_delete(
            path=lines(tmp_path / "d.json", [*entries, "nobody"]), dry_run=True
        )
    assert (result.rows, result.failed) == (11, 1)


@pytest.fixture
def vanishes_after_check(monkeypatch, people):
    """`ben` is removed by someone else between the check pass and the deletes."""
    original = bulk_delete._delete_check

    def check_then_vanish(*args: Any, **kwargs: Any) -> Any:
        targets = original(*args, **kwargs)
        User.objects.filter(username="ben").delete()
        return targets

    monkeypatch.setattr(bulk_delete, "_delete_check", check_then_vanish)


@pytest.mark.usefixtures("vanishes_after_check")
def test_a_user_gone_between_the_passes_rolls_a_hard_delete_back(tmp_path):
    _, _, err = fails(lines(tmp_path / "d.json", ["ann", "ben", "cat"]), "--hard")
    assert err.splitlines() == ["line 3: Not found (deleted meanwhile); nothing was deleted."]
    assert sorted(User.objects.values_list("username", flat=True)) == ["ann", "cat", "dan"]
    assert not OutboxEvent.objects.exists()


@pytest.mark.usefixtures("vanishes_after_check")
def test_a_user_gone_between_the_passes_with_continue_on_error(tmp_path):
    _, out, err = fails(lines(tmp_path / "d.json", ["ann", "ben", "cat"]), "--continue-on-error")
    assert err.splitlines() == ["line 3: Not found (deleted meanwhile)."]
    assert deleted_names() == ["ann", "cat"]
    assert "Deleted: 2 users." in out
