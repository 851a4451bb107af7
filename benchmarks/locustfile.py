"""The mixed workload of `benchmarks/load_mix.py`, for locust (headless, FastHttpUser).

Weights, of all requests: login 5 %, refresh 10 %, `/users/me` 40 %, LLM settings read 20 %,
notifications list 10 %, chat-session create 10 %, document upload 5 %. Each simulated user starts
with one of the sessions `load_mix.py` opened (`LOAD_SESSIONS`: a JSON file of [username, access,
refresh]; `LOAD_PASSWORD` for its logins) and keeps its pair; a later login or refresh replaces it,
as a client would. The request rate is set by `LOAD_RATE`
(requests per second, all users together; 0 for unpaced).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from locust import FastHttpUser, constant, constant_throughput, task

SESSIONS = (
    json.loads(Path(os.environ["LOAD_SESSIONS"]).read_text()) if os.environ.get("LOAD_SESSIONS") else []
)
PASSWORD = os.environ.get("LOAD_PASSWORD", "")
RATE = float(os.environ.get("LOAD_RATE", "40"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "20"))
_sessions = iter(SESSIONS)
RESUME = b"Ten years of Python and Django; PostgreSQL, Redis, Kafka, Celery.\n" * 20
BOUNDARY = "load-mix-boundary-7f3a"
# The multipart body is built once, by hand: FastHttpUser sends bytes, and the upload is always the same.
UPLOAD = (
    (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nLoad\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="resume.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    + RESUME
    + f"\r\n--{BOUNDARY}--\r\n".encode()
)


class PlatformClient(FastHttpUser):
    # LOAD_RATE=0: as fast as each client can go (the scaling runs).
    wait_time = constant_throughput(RATE / CLIENTS) if RATE > 0 else constant(0)

    def on_start(self) -> None:
        # One session per client: two clients sharing a refresh token would each see the other's rotation.
        self.username, self.access, self.refresh = next(_sessions)

    def _take_pair(self, path: str, body: dict[str, str], name: str) -> None:
        """A login or a refresh: the new pair replaces the client's, as a real client's would."""
        with self.client.post(path, json=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{name}: {response.status_code}")
                return
            pair = response.json()
            self.access, self.refresh = pair["access"], pair["refresh"]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @task(5)
    def login(self) -> None:
        body = {"username": self.username, "password": PASSWORD}
        self._take_pair("/api/v1/auth/login", body, name="POST /auth/login")

    @task(10)
    def refresh_pair(self) -> None:
        self._take_pair("/api/v1/auth/refresh", {"refresh": self.refresh}, name="POST /auth/refresh")

    @task(40)
    def me(self) -> None:
        self.client.get("/api/v1/users/me", headers=self.bearer, name="GET /users/me")

    @task(20)
    def llm_settings(self) -> None:
        self.client.get("/api/v1/profile/llm-settings", headers=self.bearer, name="GET /profile/llm-settings")

    @task(10)
    def notifications(self) -> None:
        self.client.get("/api/v1/notifications", headers=self.bearer, name="GET /notifications")

    @task(10)
    def chat_session(self) -> None:
        self.client.post(
            "/api/v1/chat-sessions",
            json={"external_id": uuid.uuid4().hex, "title": "Load"},
            headers=self.bearer,
            name="POST /chat-sessions",
        )

    @task(5)
    def upload(self) -> None:
        self.client.post(
            "/api/v1/resumes",
            data=UPLOAD,
            headers={**self.bearer, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            name="POST /resumes",
        )
