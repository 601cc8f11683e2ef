"""Test helpers (no fixtures: those live in conftest.py): where ../shared is, synthetic clips made with
the bundled ffmpeg, and reading back what a render wrote.

Import as ``from helpers import ...`` (pytest puts tests/ on sys.path, tests/ is not a package).
Nothing here imports TensorFlow or Keras, and nothing runs at import but path arithmetic.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# The one place tests find ../shared: $DREAMVIDEO_SHARED, else the folder next to the repository.
SHARED = Path(os.environ.get("DREAMVIDEO_SHARED") or REPO.parent / "shared")
MEDIA = SHARED / "media"  # real clips and images (read its README)
WEIGHTS = SHARED / "weights"
INCEPTION_WEIGHTS = WEIGHTS / "inception_v3_notop_imagenet_to_mixed5.weights.h5"  # InceptionV3 through mixed5

# Skip markers for whole tests; `need(path)` skips from inside a test or fixture for one file.
# (conftest.py's `media` and `inception_weights` fixtures do the same and hand the test the path.)
needs_media = pytest.mark.skipif(not MEDIA.is_dir(),
                                 reason=f"shared media not found at {MEDIA} (set DREAMVIDEO_SHARED)")


def need(path: Path) -> Path:
    """``path`` if it exists; otherwise skip the calling test cleanly (../shared not laid out here)."""
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not laid out on this machine; set DREAMVIDEO_SHARED)")
    return path


def one_line(err: BaseException) -> str:
    """The error's message, asserted to be one non-empty line (what the CLI shows a user)."""
    msg = str(err)
    assert msg and "\n" not in msg, f"message must be one line: {msg!r}"
    return msg


# ---------------------------------------------------------------------------------------------- ffmpeg


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg with an argument list (never a shell string); its stderr in the failure."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"ffmpeg {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


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
    """A clip that pans across a real image by ``step`` px per frame (known motion); size is (w, h)."""
    import cv2

    w, h = size
    need_w = w + step * frames + 2
    scale = max(need_w / image.shape[1], h / image.shape[0])
    big = cv2.resize(image, (int(image.shape[1] * scale) + 1, int(image.shape[0] * scale) + 1),
                     interpolation=cv2.INTER_AREA)
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


# ---------------------------------------------------------------------------------------------- outputs


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame a video file decodes to (HxWx3 uint8 RGB), as a player would show them."""
    from dreamvideo.decode import iter_frames

    return list(iter_frames(path))


def count_frames(path: Path) -> int:
    """How many frames a video file decodes to."""
    from dreamvideo.decode import iter_frames

    return sum(1 for _ in iter_frames(path))


def folder_frames(folder: Path) -> list[np.ndarray]:
    """The frames of a PNG-folder output, in order (HxWx3 uint8 RGB)."""
    from dreamvideo.decode import read_image

    return [read_image(p) for p in sorted(Path(folder).glob("*.png"))]
