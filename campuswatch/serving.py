"""Running the web app under uvicorn so that Ctrl-C and SIGTERM end in an orderly shutdown.

uvicorn re-raises a captured SIGTERM once it has stopped, which kills the process before the caller's ``finally``
blocks run (workers, the simulator, the engine). Here the signals only ask the server to exit, and the caller
cleans up after :func:`run_web` returns.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Generator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

from kernel.errors import KernelError

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 3


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # run_web owns the signal handlers; uvicorn must neither install nor re-raise them.
        yield


@contextmanager
def _exit_on_signals(server: uvicorn.Server) -> Generator[None, None, None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if server.should_exit and signum == signal.SIGINT:
            server.force_exit = True
        server.should_exit = True
        log.info("received %s: shutting down", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_web(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then return (a second Ctrl-C cuts open connections short)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on"
    )
    server = _Server(config)
    with _exit_on_signals(server):
        try:
            server.run()
        except SystemExit as err:
            # uvicorn logs why (port in use, failed lifespan start-up) and exits instead of raising.
            raise WebServerError(f"the web server could not start on {host}:{port} (see the log above)") from err


class WebServerError(KernelError):
    """The web server could not start."""
