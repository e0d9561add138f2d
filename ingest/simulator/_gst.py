"""Lazy import of GStreamer and its RTSP server through PyGObject.

PyGObject is an optional dependency (``campuswatch[sim]``): importing the simulator package must work without it,
so the bindings are loaded on first use and a missing install becomes a clear :class:`SimulatorError`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ingest.errors import SimulatorError

_lock = threading.Lock()
_loaded: GstModules | None = None


@dataclass(frozen=True)
class GstModules:
    """The GObject-introspection modules the simulator uses (typed ``Any``: the bindings are dynamic)."""

    Gst: Any
    GstRtspServer: Any
    GstRtsp: Any
    GLib: Any


def load_gst() -> GstModules:
    """Import and initialise GStreamer once per process."""
    global _loaded  # noqa: PLW0603 - a process-wide, initialise-once binding
    with _lock:
        if _loaded is not None:
            return _loaded
        try:
            import gi

            gi.require_version("Gst", "1.0")
            gi.require_version("GstRtsp", "1.0")
            gi.require_version("GstRtspServer", "1.0")
            from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
        except (ImportError, ValueError) as err:
            raise SimulatorError(
                "the camera simulator needs PyGObject and the GStreamer RTSP server "
                "(pip install 'campuswatch[sim]'; apt-get install gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)"
            ) from err
        if not Gst.is_initialized():
            Gst.init(None)
        for element in ("appsrc", "h264parse", "rtph264pay"):
            if Gst.ElementFactory.find(element) is None:
                raise SimulatorError(f"GStreamer element {element!r} is missing (install gstreamer1.0-plugins-*)")
        _loaded = GstModules(Gst, GstRtspServer, GstRtsp, GLib)
        return _loaded
