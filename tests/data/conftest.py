"""Fixtures for the funcnet.data tests: the shared data folder, when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """``$FUNCNET_SHARED_DATA``, else ``../shared/data`` beside the repository; None if absent."""
    env = os.environ.get("FUNCNET_SHARED_DATA")
    folder = Path(env) if env else ROOT.parent / "shared" / "data"
    return folder if folder.is_dir() else None


@pytest.fixture
def shared_data():
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("the shared data folder (FUNCNET_SHARED_DATA or ../shared/data) is absent")
    return folder
