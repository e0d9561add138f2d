"""campuswatch: the composition root (command line, demo, migrations) of the campus video-patrol platform."""

__version__ = "0.1.0"
