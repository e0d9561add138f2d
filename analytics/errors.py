"""The analytics package's exception tree."""


class AnalyticsError(Exception):
    """Base of every error raised by ``analytics``."""


class ModelFileError(AnalyticsError):
    """A model file is missing, corrupt or cannot be fetched; the message names the file and the fix."""


class DetectorError(AnalyticsError):
    """A detector backend could not be loaded or failed on a batch."""


class DetectionsError(AnalyticsError):
    """Model output that does not make valid :class:`analytics.detections.Detections`."""
