"""social-django's strategy, adapted to an API that has no Django login session."""

from __future__ import annotations

from typing import Any

from social_django.strategy import DjangoStrategy


class SocialStrategy(DjangoStrategy):
    """Two differences from `DjangoStrategy`:

    - no `request.session` is required: the JSON API runs without the session
      middleware, and its calls keep no state between requests (an unsaved
      session object stands in). The redirect flow has a real session.
    - the pipeline is run by the backend itself, not through Django's
      `authenticate()`: the social backends are not Django authentication
      backends, so nothing (the admin's login form included) can log in a
      Django session with them.
    """

    def __init__(self, storage: Any, request: Any = None, tpl: Any = None) -> None:
        super().__init__(storage, None, tpl)
        self.request = request
        if request is not None and hasattr(request, "session"):
            self.session = request.session

    def authenticate(self, backend: Any, **kwargs: Any) -> Any:
        kwargs.pop("request", None)
        kwargs.update(strategy=self, storage=self.storage, backend=backend)
        # Positional request: what Django's authenticate() passes, and the strategy strips.
        return backend.authenticate(self.request, **kwargs)
