"""Register, as a client sees it (API.md, "Accounts and tokens"); login and the tokens: test_auth.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.support import USER_FIELDS

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"

STRONG = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("commit_per_request")


def post(path: str, data: dict | None = None, **extra):
    return APIClient().post(path, data or {}, format="json", **extra)


def register(**fields):
    data = {"username": "alice", "email": "alice@example.com", "password": STRONG, **fields}
    return post(REGISTER, data)


@pytest.mark.django_db
def test_register_answers_201_with_the_me_shape_and_role_user():
    response = register(full_name="Alice Liddell")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["full_name"] == "Alice Liddell"
    assert body["roles"] == ["user"]
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert body["created_at"].endswith("Z")
    user = User.objects.get(id=body["id"])
    assert list(user.groups.values_list("name", flat=True)) == ["user"]
    assert not user.is_staff
    assert not user.is_superuser
    assert user.check_password(STRONG)


@pytest.mark.django_db
def test_register_never_echoes_the_password_nor_its_hash():
    response = register()

    assert response.status_code == 201
    text = response.content.decode()
    assert STRONG not in text
    assert "password" not in response.json()
    assert User.objects.get(username="alice").password not in text


@pytest.mark.django_db
def test_register_stores_the_email_lower_case():
    response = register(email="  Alice.Liddell@Example.COM ")

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "alice.liddell@example.com"
    assert User.objects.get(username="alice").email == "alice.liddell@example.com"


@pytest.mark.django_db
def test_register_refuses_an_email_taken_in_another_case():
    assert register(email="alice@example.com").status_code == 201

    response = register(username="alice2", email="ALICE@Example.com")

    assert response.status_code == 400
    assert "email" in response.json()
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_register_refuses_a_username_taken_in_another_case():
    assert register(username="Alice").status_code == 201

    response = register(username="aLICE", email="other@example.com")

    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["Ärger", "ärger", "\u0430dmin", "user name"])
def test_a_username_outside_ascii_letters_digits_and_dot_plus_dash_underscore_is_refused(username):
    """ASCII only: no look-alike names ("admin" spelt with a Cyrillic U+0430), and case-insensitive
    uniqueness is exact on every database (SQLite's LOWER() folds ASCII only)."""
    response = register(username=username, email="first@example.com")

    assert response.status_code == 400, response.content
    assert "username" in response.json()
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("Sh0rt!", "too short"),
        ("password123", "common"),
        ("qwerty123456", "common"),
        ("5830192746139", "numeric"),
        ("margaretsmith1", "similar to the username"),
        ("maggie@example.com", "similar to the email"),
    ],
)
def test_register_refuses_a_weak_password_as_a_password_field_error(password, why):
    response = register(username="margaretsmith", email="maggie@example.com", password=password)

    assert response.status_code == 400, why
    body = response.json()
    assert set(body) == {"password"}, body
    assert body["password"]
    assert all(isinstance(message, str) for message in body["password"])
    assert password not in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_refuses_a_password_similar_to_the_full_name():
    response = register(full_name="Bartholomew Featherstonehaugh", password="featherstonehaugh")

    assert response.status_code == 400
    assert "password" in response.json()


@pytest.mark.django_db
def test_register_names_every_missing_field():
    response = post(REGISTER, {})

    assert response.status_code == 400
    assert {"username", "email", "password"} <= set(response.json())


@pytest.mark.django_db
def test_register_refuses_an_invalid_email():
    response = register(email="not-an-email")

    assert response.status_code == 400
    assert "email" in response.json()


@pytest.mark.django_db
def test_bug_username_containing_at_sign_is_refused_or_can_log_in():
    """API.md: `username` (login) "may be the username or the email".

    The username validator allows "@", but login treats anything with "@" as an
    email, so such an account cannot log in by its username.
    """
    response = register(username="ann@home", email="ann@example.com")
    if response.status_code == 400:
        assert "username" in response.json()
        return
    assert response.status_code == 201

    login = post(LOGIN, {"username": "ann@home", "password": STRONG})

    assert login.status_code == 200, login.content
