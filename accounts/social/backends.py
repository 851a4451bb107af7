"""The two providers: social-core's backends, with what they lack for an API.

`YandexBackend` is social-core's `YandexOAuth2` (authorization URL, token
exchange, error classification, `state`), fetching the profile with the token
in a header and refusing tokens issued to another application.
`TelegramBackend` is social-core's `TelegramAuth` with the widget check of
`telegram.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from social_core.backends.telegram import TelegramAuth
from social_core.backends.yandex import YandexOAuth2
from social_core.exceptions import AuthCredentialError, AuthResponseError

from .telegram import telegram_login_data

USER_INFO_URL = "https://login.yandex.ru/info"

#: API name of a provider -> social-core backend name (stored as `UserSocialAuth.provider`).
PROVIDERS = {"yandex": "yandex-oauth2", "telegram": "telegram"}
PROVIDER_OF_BACKEND = {backend: provider for provider, backend in PROVIDERS.items()}
TITLES = {"yandex": "Yandex", "telegram": "Telegram"}


def _timeout() -> tuple[float, float]:
    return (settings.SOCIAL_AUTH_CONNECT_TIMEOUT, settings.SOCIAL_AUTH_READ_TIMEOUT)


class YandexBackend(YandexOAuth2[Any]):
    name = "yandex-oauth2"

    def configured(self) -> bool:
        key, secret = self.get_key_and_secret()
        return bool(key and secret)

    def request(self, url: str, *, timeout: Any = None, **kwargs: Any) -> Any:
        # Separate connect and read timeouts, always set (requests has none by default).
        return super().request(url, timeout=timeout or _timeout(), **kwargs)  # type: ignore[arg-type]

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The profile. The token goes in a header: social-core puts it in the URL,
        where proxies and debug logs keep it."""
        data = self.get_json(
            USER_INFO_URL, headers={"Authorization": f"OAuth {access_token}"}, params={"format": "json"}
        )
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("id"), str | int)
            or data.get("id") in ("", None)
        ):
            raise AuthResponseError(self, code="malformed_response", stage="user_info")
        # A token is proof only for the application it was issued to: one that a
        # user gave to some other site must not log in here as that user.
        key, _ = self.get_key_and_secret()
        if data.get("client_id") != key:
            raise AuthCredentialError(self, code="credential_rejected", stage="user_info")
        return data

    def profile_from_code(self, *, code: str, redirect_uri: str) -> dict[str, Any]:
        """Exchange an authorization code (with our secret) for a token, then fetch the profile."""
        key, secret = self.get_key_and_secret()
        response = self.request_access_token(
            self.access_token_url(),
            method="POST",
            headers=self.auth_headers(),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": key,
                "client_secret": secret,
            },
        )
        return self.user_data(self.get_access_token(response))

    def profile_from_callback(self) -> dict[str, Any]:
        """The redirect flow's callback: provider error, `state` (single use), code exchange, profile.

        social-core's `auth_complete` without the pipeline, which runs later in
        our own transaction.
        """
        self._process_error(self.data, stage="callback")
        state = self.validate_state()
        response = self.request_access_token(
            self.access_token_url(),
            method=self._method(),
            headers=self.auth_headers(),
            data=self.auth_complete_params(state),
        )
        return self.user_data(self.get_access_token(response))

    def _method(self) -> Literal["GET", "POST"]:
        return self.ACCESS_TOKEN_METHOD

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        details = super().get_user_details(response)
        # The login is a stable, ASCII handle; the display name is free text.
        details["username"] = response.get("login") or details.get("username")
        return details

    def extra_data(
        self,
        user: Any,
        uid: str,
        response: dict[str, Any],
        details: dict[str, Any],
        pipeline_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        # Not the access token: nothing here calls Yandex later, so it is not kept.
        return {"login": response.get("login") or "", "display_name": response.get("display_name") or ""}


class TelegramBackend(TelegramAuth[Any]):
    name = "telegram"

    def configured(self) -> bool:
        return bool(settings.TELEGRAM_BOT_TOKEN)

    def verify_data(self, response: Any) -> None:
        raise NotImplementedError("use profile_from_widget: it returns the verified fields")

    def profile_from_widget(self, data: Any) -> dict[str, str]:
        """Only the widget's signed fields, verified and claimed (used once)."""
        return telegram_login_data(data)

    def extra_data(
        self,
        user: Any,
        uid: str,
        response: dict[str, Any],
        details: dict[str, Any],
        pipeline_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        # Not the hash or auth_date of one login: who the identity is, nothing more.
        return {
            name: response[name] for name in ("username", "first_name", "last_name") if response.get(name)
        }
