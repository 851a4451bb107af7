"""WSGI entry point, used by gunicorn and by `runserver` alike."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from config.startup import on_server_start  # noqa: E402  (needs the app registry)

on_server_start()
