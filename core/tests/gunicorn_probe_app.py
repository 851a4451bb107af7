"""A WSGI app for the worker's tests (test_gunicorn_worker.py): the worker alone, without Django.

`/sleep?s=0.5` holds its thread (as a login's bcrypt does, the GIL released); `/ignore-body`
answers without reading the body; every answer names the process and echoes the query string,
so a test can tell which request an answer belongs to. `/exit` ends the thread serving it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(query["s"][0]))
    elif path == "/exit":
        raise SystemExit(3)  # past every `except Exception`: it ends the thread that serves it
    elif path != "/ignore-body":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
    body = json.dumps({"pid": os.getpid(), "path": path, "query": environ.get("QUERY_STRING", "")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
