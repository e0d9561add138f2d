"""The notifier tests' fixtures (see :mod:`tests.bureau`)."""

from tests.bureau import api, bureau, bus, clock, thumbnails

__all__ = ["api", "bureau", "bus", "clock", "thumbnails"]
