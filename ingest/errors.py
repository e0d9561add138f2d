"""The ingest package's exception tree.

Everything ingest raises on purpose derives from :class:`IngestError`, so callers can catch one type and still
tell the simulator's failures apart from the stream readers'.
"""


class IngestError(Exception):
    """Base of every error raised by the ingest package."""


class SimulatorError(IngestError):
    """The camera simulator could not start, stop or serve a camera."""


class SimulatorAssetError(SimulatorError):
    """A photo the simulator composites into its scenes is missing or unreadable."""


class ClipGenerationError(SimulatorError):
    """A scene clip could not be rendered, encoded, cached or loaded."""


class ScheduleError(SimulatorError):
    """A camera schedule file could not be read or is invalid."""


class UnknownCameraError(SimulatorError, KeyError):
    """A camera code that the simulator does not serve."""
