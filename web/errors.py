"""The web package's exception tree."""


class WebError(Exception):
    """Base of the web package's errors."""


class AuthError(WebError):
    """A login or session could not be established."""
