"""gunicorn's access log in the service's format.

Plain: gunicorn's own line (`access_log_format` in gunicorn.conf.py). JSON
(`LOG_FORMAT=json`): one object a line with the same keys as the service's
lines; built here because gunicorn's format atoms are not escaped, so a quote
in a user agent would break a JSON template. Paths are logged without their
query string, which may carry codes or tokens.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger


class ServiceLogger(Logger):
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        if os.environ.get("LOG_FORMAT", "plain").lower() != "json":
            super().access(resp, req, environ, request_time)
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        duration_ms = round(request_time.total_seconds() * 1000, 3)
        line = {
            "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "message": f"{atoms['m']} {atoms['U']} {atoms['s']}",
            "request_id": atoms["{x-request-id}o"],
            "method": atoms["m"],
            "path": atoms["U"],
            "status": resp.status_code,
            "bytes": atoms["B"],
            "duration_ms": duration_ms,
            "remote_addr": atoms["h"],
            "user_agent": atoms["a"],
        }
        try:
            self.access_log.info(json.dumps(line))
        except Exception:
            self.exception("access log line not written")
