"""Shared fixtures for ingest tests: short scene clips rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.simulator import ClipLibrary, ClipSettings

# Two GOPs (4 s) per clip keeps the whole library's encode at a couple of seconds.
TEST_CLIP_SETTINGS = ClipSettings(gops=2)


@pytest.fixture(scope="session")
def sim_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose ``sim-clips`` cache holds the session's clips (pass it as ``--data-dir``)."""
    return tmp_path_factory.mktemp("sim-data")


@pytest.fixture(scope="session")
def sim_clips(sim_data_dir: Path) -> ClipLibrary:
    """All scene clips at :data:`TEST_CLIP_SETTINGS`, cached in ``sim_data_dir / 'sim-clips'``."""
    return ClipLibrary.load_or_generate(sim_data_dir / "sim-clips", TEST_CLIP_SETTINGS)
