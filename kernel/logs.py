"""Process-wide logging set-up: one handler on stderr, credentials redacted from every record."""

from __future__ import annotations

import json
import logging
import sys

from kernel.secrets import install_redaction


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Log to stderr at ``level``; every handler redacts credentials (:class:`kernel.secrets.RedactingFilter`)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    install_redaction(root)
    # Our own log lines already say what uvicorn's access log would, without query strings.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
