"""Shared test fixtures: where ../shared is, isolated caches, and a tiny model.

Tests that need real weights or real media use ../shared (skipped cleanly where it is absent) or
the bundled EfficientNet-Lite0; tests where the weights do not matter use the tiny model below,
registered as "tiny" so every command can be exercised in seconds.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Isolate every cache before Keras or dreamvideo look at them (KERAS_HOME is read once, at import).
_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="dreamvideo-tests-"))
os.environ.setdefault("KERAS_HOME", str(_CACHE_ROOT / "keras"))
os.environ.setdefault("DREAMVIDEO_CACHE", str(_CACHE_ROOT / "cache"))
os.environ["DREAMVIDEO_PRESETS"] = str(_CACHE_ROOT / "user-presets")
os.environ.pop("DREAMVIDEO_WEIGHTS", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(os.environ.get("DREAMVIDEO_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MEDIA = SHARED / "media"
INCEPTION_WEIGHTS = SHARED / "weights" / "inception_v3_notop_imagenet_to_mixed5.weights.h5"


def need(path: Path) -> Path:
    """Skip the calling test cleanly when a shared file is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not laid out on this machine)")
    return path


@pytest.fixture
def media() -> Path:
    return need(MEDIA)


@pytest.fixture
def inception_weights() -> Path:
    return need(INCEPTION_WEIGHTS)


def _register_tiny() -> None:
    from tiny_model import register  # its own module, so Ray workers can register it too

    register()


_register_tiny()


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg with an argument list (never a shell string)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, capture_output=True)


def make_clip(path: Path, *, seconds: float = 1.0, fps: str = "10", size: str = "96x64", audio: bool = False,
              src: str = "testsrc2") -> Path:
    """A synthetic clip made with ffmpeg's lavfi sources (optionally with a 440 Hz tone)."""
    args = ["-f", "lavfi", "-i", f"{src}=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, str(path))
    return path


def panning_clip(path: Path, image: np.ndarray, *, frames: int = 12, fps: str = "10", step: int = 3,
                 size: tuple[int, int] = (128, 96), audio_seconds: float | None = None) -> Path:
    """A clip that pans across a real image by ``step`` px per frame (known motion)."""
    import cv2

    w, h = size
    need_w = w + step * frames + 2
    scale = max(need_w / image.shape[1], h / image.shape[0])
    big = cv2.resize(image, (int(image.shape[1] * scale) + 1, int(image.shape[0] * scale) + 1), interpolation=cv2.INTER_AREA)
    tmp = path.with_suffix(".frames")
    tmp.mkdir(exist_ok=True)
    for i in range(frames):
        crop = big[:h, i * step:i * step + w]
        cv2.imwrite(str(tmp / f"{i:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    args = ["-framerate", fps, "-i", str(tmp / "%04d.png")]
    if audio_seconds:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={audio_seconds}"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "12"]
    if audio_seconds:
        args += ["-c:a", "aac"]
    ffmpeg(*args, str(path))
    return path
