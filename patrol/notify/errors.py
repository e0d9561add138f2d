"""The notifier's exception tree (part of the patrol package's: the API answers 422, 404 and 409 for them)."""

from __future__ import annotations

from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError


class NotifyError(PatrolError):
    """Base of every error raised by ``patrol.notify``."""


class UnknownChannelError(NotifyError, PatrolNotFoundError):
    """A channel name that the configuration does not have."""


class ChannelDisabledError(NotifyError, PatrolConflictError):
    """A channel that is configured but disabled."""


class ChannelError(NotifyError):
    """A send that failed: the receiver answered an error, or could not be reached in time.

    ``status_code`` is the receiver's HTTP status (or SMTP reply code) when it answered, else None. The message
    never holds a secret (robot URLs are shown without their query, secrets are masked).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
