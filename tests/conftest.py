"""Shared fixtures: where the third-party test media live, and test-wide settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALSA_CONFIG_DIR", "/usr/share/alsa")

REPO = Path(__file__).resolve().parent.parent
#: The clip bundled with the repository (GRID corpus, CC BY 4.0).
BUNDLED_CLIP = REPO / "examples" / "media" / "grid_bbaf2n.mpg"
#: Third-party media beside the project (present in CI, absent in a user's fresh clone).
SHARED_DATA = Path(os.environ.get("STREAMLINE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a clear reason when it is absent."""
    if not (SHARED_DATA / "MANIFEST.csv").exists():
        pytest.skip(f"third-party test media not found at {SHARED_DATA} (set STREAMLINE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_clip() -> Path:
    """The GRID clip shipped in examples/media."""
    return BUNDLED_CLIP


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reads ../shared/data, directly or through another fixture, ``shared_data``
    (so ``-m "not shared_data"`` selects exactly what runs without it)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)
