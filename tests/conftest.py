"""Fixtures only: isolated caches, the ../shared fixtures, and a tiny model.

Helpers (the SHARED/MEDIA paths, skip markers, ffmpeg, synthetic clips, reading outputs back) live in
tests/helpers.py. Tests that need real weights or real media use ../shared (skipped cleanly where it is
absent) or the bundled EfficientNet-Lite0; tests where the weights do not matter use the tiny model
(tests/tiny_model.py, its own module so Ray workers can load it too), registered as "tiny" so every
command can be exercised in seconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Isolate every cache before Keras or dreamvideo look at them (KERAS_HOME is read once, at import).
_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="dreamvideo-tests-"))
os.environ.setdefault("KERAS_HOME", str(_CACHE_ROOT / "keras"))
os.environ.setdefault("DREAMVIDEO_CACHE", str(_CACHE_ROOT / "cache"))
os.environ["DREAMVIDEO_PRESETS"] = str(_CACHE_ROOT / "user-presets")
os.environ.pop("DREAMVIDEO_WEIGHTS", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Ray started by tests (in this process or in children) stays on loopback, never the network address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from helpers import INCEPTION_WEIGHTS, MEDIA, need  # noqa: E402 (after the cache isolation above)


@pytest.fixture(autouse=True)
def _no_recorded_weights():
    """Each test starts with no installed weights and no recorded failed download (both live in the
    session's dreamvideo cache, next to the converted EfficientNet-Lite0 that tests share)."""
    import shutil

    yield
    shutil.rmtree(Path(os.environ["DREAMVIDEO_CACHE"]) / "weights", ignore_errors=True)


@pytest.fixture
def media() -> Path:
    """../shared/media, or skip the test."""
    return need(MEDIA)


@pytest.fixture
def inception_weights() -> Path:
    """The shared InceptionV3 weights file (through mixed5), or skip the test."""
    return need(INCEPTION_WEIGHTS)


def _register_tiny() -> None:
    from tiny_model import register  # its own module, so Ray workers can register it too

    register()


_register_tiny()
