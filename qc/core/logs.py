"""Logging to stderr (and, for workers, a rotated file), plain or JSON, every secret masked before it is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path

from qc.core.config import SECRET_MASK, redact_url

URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5  # {name}.log plus .1 … .5: at most 60 MiB per file name
MIN_SECRET_LEN = 3  # a 1-2 character "secret" protects nothing, and masking it would shred every line


def _by_length(secrets: Iterable[str]) -> list[str]:
    return sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret (longest first) and every password inside a URL replaced by ``***``.

    Exact strings catch the values qc knows (Settings.secrets() gives them raw and URL-encoded);
    the URL pass catches credentials qc never saw as a setting, such as a password in a URL that
    a library echoes back.
    """
    for secret in _by_length(secrets):
        text = text.replace(secret, SECRET_MASK)
    return URL_RE.sub(lambda m: redact_url(m.group(0)), text)


class RedactSecrets(logging.Filter):
    """Mask secrets in a record's final message, and in its traceback and stack text, before any handler."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = _by_length(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_text:  # the traceback RedactSecrets already masked
            doc["exc"] = record.exc_text
        elif record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Route qc's logs to stderr so stdout stays clean for tables and ``--json``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def add_file(path: Path, max_bytes: int = LOG_FILE_BYTES, backups: int = LOG_FILE_BACKUPS) -> Path | None:
    """Also write the logs to ``path``, rotated at ``max_bytes`` with ``backups`` kept, masked and formatted
    as on stderr. A directory that cannot be made or written is one warning, never a failed start:
    stderr (the journal under systemd) still has everything."""
    root = logging.getLogger()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("no log file %s (%s); logging to stderr only", path,
                                            exc.strerror or exc)
        return None
    template = root.handlers[0] if root.handlers else None
    if template is not None:
        for log_filter in template.filters:
            handler.addFilter(log_filter)
        handler.setFormatter(template.formatter)
    root.addHandler(handler)
    return path
