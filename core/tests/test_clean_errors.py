"""Clean errors (API.md → Conventions; issue 21): every message is a plain sentence about the request.

- a malformed `Authorization` header is a 401 with a plain sentence, on the lean path as on DRF's;
- no message names the implementation (a number too long to parse is "too large");
- a body that cannot be read, or that lacks what the endpoint needs, says so and what to send.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts.tests.support import PASSWORD

pytestmark = [pytest.mark.django_db]

ME = "/api/v1/users/me"
FORM = "application/x-www-form-urlencoded"


# --- the Authorization header -------------------------------------------------------------------

MALFORMED = ["Bearer", "Bearer ", "Bearer one two", "Basic YWxpY2U6c2VjcmV0", "Token abc", "bearer abc"]


@pytest.mark.parametrize("header", MALFORMED)
def test_a_malformed_authorization_header_is_a_plain_401_on_every_path(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    lean = client.get(ME)  # the lean dispatch (accounts/hot_path_views.py)
    drf = client.get("/api/v1/notifications")  # a DRF view
    social = client.post(
        "/api/v1/auth/social/yandex", {"access_token": "t"}, format="json"
    )  # optional bearer

    for response in (lean, drf, social):
        body = response.json()
        assert response.status_code == 401, (header, body)
        assert set(body) == {"detail", "code"}
        assert body["code"] == "bad_authorization_header"
        assert "Bearer <token>" in body["detail"]
        assert not any(mark in body["detail"] for mark in ("{", "ErrorDetail", "string=")), body
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert lean.json() == drf.json() == social.json()


def test_no_authorization_header_is_still_not_authenticated():
    response = APIClient().get(ME)

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


# --- messages that say what is wrong, and nothing of the implementation -------------------------

IMPLEMENTATION = ("sys.", "set_int_max_str_digits", "Exceeds the limit", "ErrorDetail", "codec", "Traceback")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/login", b'{"username": "a", "password": ' + b"9" * 5001 + b"}"),
        ("/api/v1/auth/register", b'{"username": -' + b"1" * 5001 + b"}"),
        ("/api/v1/quiz-results", b'{"score": ' + b"9" * 5001 + b"}"),
        ("/api/v1/quiz-results", b'{"score": 1e999}'),
    ],
)
def test_a_number_too_long_to_read_is_too_large(auth_client, path, body):
    response = auth_client.post(path, body, content_type="application/json")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "too large" in detail
    assert not any(mark in detail for mark in IMPLEMENTATION), detail


def test_a_long_number_short_of_the_bound_is_read(auth_client):
    body = b'{"quiz_id": "q", "topic": "t", "score": 1, "max_score": ' + b"9" * 900 + b"}"

    response = auth_client.post("/api/v1/quiz-results", body, content_type="application/json")

    assert response.status_code == 400  # read, then refused by the field's own bound
    assert list(response.json()) == ["max_score"]


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b'{"username": "\xff"}', "application/json", "not valid utf-8"),
        (b'{"score": NaN}', "application/json", "NaN is not a JSON number"),
        (b'{"username": "x"', "application/json", "JSON parse error - Expecting"),
    ],
)
def test_an_unreadable_json_body_says_why_in_the_clients_terms(api_client, body, content_type, says):
    response = api_client.post("/api/v1/auth/login", body, content_type=content_type)

    assert response.status_code in (400, 415)
    detail = response.json()["detail"]
    assert says in detail, detail
    assert not any(mark in detail for mark in IMPLEMENTATION), detail


def test_a_resume_with_neither_text_nor_file_says_one_is_required(auth_client):
    response = auth_client.post("/api/v1/resumes", {"title": "CV"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["A text or a file is required: send JSON with `text`, or a multipart `file`."]
    }


def test_a_resume_with_both_text_and_file_says_not_both(auth_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("cv.txt", b"A resume.", content_type="text/plain")
    response = auth_client.post("/api/v1/resumes", {"text": "A resume.", "file": upload}, format="multipart")

    assert response.status_code == 400
    assert "not both" in response.json()["non_field_errors"][0]


def test_json_sent_as_a_form_to_login_says_the_body_is_json(api_client, user):
    # What `curl -d '{"username": ...}'` sends: JSON with the form's content type.
    body = json.dumps({"username": user.username, "password": PASSWORD})

    response = api_client.post("/api/v1/auth/login", body, content_type=FORM)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    detail = response.json()["detail"]
    assert "could not be read" in detail
    assert "it is JSON" in detail
    assert "Content-Type: application/json" in detail


@pytest.mark.parametrize("content_type", ["", "text/plain"])
def test_login_without_a_readable_content_type_says_what_to_send(api_client, user, content_type):
    body = json.dumps({"username": user.username, "password": PASSWORD})

    response = api_client.generic("POST", "/api/v1/auth/login", body, content_type=content_type)

    assert response.status_code == 415
    detail = response.json()["detail"]
    assert detail.startswith("The body could not be read:")
    assert ("no Content-Type" in detail) == (content_type == "")
    assert "Content-Type: application/json" in detail
    assert "application/x-www-form-urlencoded" in detail  # login takes the OAuth2 form too
