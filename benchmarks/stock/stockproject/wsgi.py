"""WSGI config for stockproject (as `startproject` writes it)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stockproject.settings")

application = get_wsgi_application()
