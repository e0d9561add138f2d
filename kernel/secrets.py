"""Secrets at rest and redaction.

Camera passwords are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key comes
from ``CAMPUSWATCH_SECRET_KEY`` or from a 0600 key file in the data directory, created on first use.

Every URL or text that may carry a credential passes through :func:`redact_url` / :func:`redact_text` before it
reaches a log line, an error message or an API response; :class:`RedactingFilter` applies the same to every log
record as a second line of defence.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

from kernel.errors import SecretsError

SECRET_KEY_ENV = "CAMPUSWATCH_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
KEY_FILE_NAME = "secret.key"
MASK = "***"
# Query parameters that some camera vendors use to pass credentials in the URL.
_SECRET_PARAMS = frozenset(
    {"password", "passwd", "pwd", "pass", "token", "key", "secret", "auth", "user", "username"}
)
# scheme://user:pass@  or  scheme://user@  in free text (error messages from FFmpeg, drivers, ...).
_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
_QUERY_SECRET_RE = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(sorted(_SECRET_PARAMS)) + r")=)(?P<value>[^&\s'\"#]*)", re.IGNORECASE
)


def redact_url(url: str) -> str:
    """Return ``url`` with user name, password and credential query parameters masked.

    ``rtsp://admin:pw@10.0.0.5/live?token=x`` → ``rtsp://***:***@10.0.0.5/live?token=***``.
    Text that is not a URL is passed through :func:`redact_text`.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if not parts.scheme or not parts.netloc:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{MASK}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask credentials in free text: URL user-info, credential query parameters and the given secrets."""

    def _userinfo(match: re.Match[str]) -> str:
        masked = f"{MASK}:{MASK}" if ":" in match.group("userinfo") else MASK
        return f"{match.group('scheme')}{masked}@"

    out = _USERINFO_RE.sub(_userinfo, text)
    out = _QUERY_SECRET_RE.sub(lambda m: f"{m.group('key')}{MASK}", out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """Logging filter that redacts credentials from every record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redact it and freeze it on the record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = str(exc)
            if redact_text(text) != text:
                # The traceback would print the credential: keep only a redacted summary.
                record.msg = f"{record.msg} [{type(exc).__name__}: {redact_text(text)}]"
                record.exc_info, record.exc_text = None, None
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def load_or_create_key(data_dir: Path) -> bytes:
    """The Fernet key: ``CAMPUSWATCH_SECRET_KEY`` if set, else ``<data_dir>/secret.key`` (created 0600)."""
    env_key = os.environ.get(SECRET_KEY_ENV)
    if env_key:
        return _checked_key(env_key.encode(), f"environment variable {SECRET_KEY_ENV}")
    path = data_dir / KEY_FILE_NAME
    return _checked_key(read_or_create_key_file(path, Fernet.generate_key), f"key file {path}")


def read_or_create_key_file(path: Path, make_key: Callable[[], bytes]) -> bytes:
    """Read a key file, refusing one that others can read; create it (mode 0600) with ``make_key()`` if absent."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SecretsError(f"key file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return read_or_create_key_file(path, make_key)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


def _checked_key(key: bytes, where: str) -> bytes:
    try:
        Fernet(key)
    except (ValueError, TypeError) as err:
        raise SecretsError(f"{where} does not hold a valid key (32 url-safe base64-encoded bytes)") from err
    return key


class SecretBox:
    """Encrypts and decrypts short secrets (camera passwords) with one key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SecretBox:
        """A box with the key of this installation (see :func:`load_or_create_key`)."""
        return cls(load_or_create_key(data_dir))

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext``; the token is ASCII and safe to store in a text column."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by :meth:`encrypt` with the same key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError) as err:
            raise SecretsError("a stored secret cannot be decrypted: wrong or rotated secret key") from err
