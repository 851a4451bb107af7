"""What the social login tests share: signed Telegram payloads and a mocked Yandex."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import responses

from accounts.social.backends import USER_INFO_URL

BOT_TOKEN = "123456:TEST-bot-token"
YANDEX_KEY = "yandex-app-id"
YANDEX_SECRET = "yandex-app-secret"
TOKEN_URL = "https://oauth.yandex.com/token"
AUTHORIZE_URL = "https://oauth.yandex.com/authorize"
YANDEX = "/api/v1/auth/social/yandex"
TELEGRAM = "/api/v1/auth/social/telegram"
IDENTITIES = "/api/v1/users/me/identities"
PAIR_FIELDS = {"access", "refresh", "token_type", "expires_in", "session_id"}


def telegram_payload(
    *,
    bot_token: str = BOT_TOKEN,
    auth_date: float | None = None,
    unsigned: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Widget fields signed as Telegram signs them; `unsigned` fields are added after signing."""
    data: dict[str, Any] = {"id": 424242, "first_name": "Ivan", "username": "ivan_tg"}
    data.update(fields)
    data["auth_date"] = int(time.time() if auth_date is None else auth_date)
    check = "\n".join(f"{key}={data[key]}" for key in sorted(data))
    secret = hashlib.sha256(bot_token.encode()).digest()
    data["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    data.update(unsigned or {})
    return data


def yandex_profile(**fields: Any) -> dict[str, Any]:
    profile = {
        "id": "1000034426",
        "login": "ivan.petrov",
        "client_id": YANDEX_KEY,
        "display_name": "Иван",
        "real_name": "Иван Петров",
        "default_email": "ivan.petrov@yandex.ru",
        "emails": ["ivan.petrov@yandex.ru"],
        "psuid": "1.AAceCw.tbHgw5DtJ9",
    }
    profile.update(fields)
    return profile


def mock_user_info(
    mock: responses.RequestsMock, profile: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    if "status" in kwargs or "body" in kwargs:
        mock.add(responses.GET, USER_INFO_URL, **kwargs)
    else:
        mock.add(responses.GET, USER_INFO_URL, json=profile or yandex_profile())
