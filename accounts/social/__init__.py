"""Social login (Yandex, Telegram) for API clients and the browser redirect flow.

social-auth-app-django / social-core do the provider work: the Yandex OAuth2
backend, the pipeline, the identity rows (`social_django.UserSocialAuth`), the
`state` of the redirect flow. What this package adds to them:

- Telegram (`telegram.py`): a 300 s window instead of a day, no future-dated
  `auth_date`, each signed payload accepted once (cache, fail closed), only the
  widget's fields signed and kept.
- Yandex (`backends.py`): the token is sent in a header, never in a URL; a token
  issued to another application is refused (`client_id` checked); explicit
  timeouts; the provider's token is not stored.
- Accounts (`pipeline.py`): never matched by email; users are created through
  `accounts.services.user_create` (event, audit) with a username within our
  rules; one identity per provider and account.
- Sessions (`services.py`): the same session, limits and audit as password
  login; the redirect flow hands tokens only to `SOCIAL_AUTH_FRONTEND_URL`, in
  the fragment, and never opens a Django login session.
- Unlinking keeps a way to log in, under a row lock.
"""
