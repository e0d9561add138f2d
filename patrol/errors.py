"""The patrol package's exception tree (the API answers 422, 404 and 409 for them)."""


class PatrolError(Exception):
    """Base of every error raised by ``patrol``: a bad tour, plan, draw or state (invalid input)."""


class PatrolNotFoundError(PatrolError):
    """A wall, tour, plan, task, hazard, shift, incident or report that does not exist."""


class PatrolConflictError(PatrolError):
    """The record's state does not allow it: a hazard step out of order, a missed task, a signed inspection."""


class PatrolTooLargeError(PatrolError):
    """An uploaded file over its size limit (the API answers 413)."""
