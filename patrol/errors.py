"""The patrol package's exception tree."""


class PatrolError(Exception):
    """Base of every error raised by ``patrol``: a bad tour, plan, draw or state."""
