"""After the dream, before the frame is kept: original colours and masks, for images, videos and zooms.

Every driver calls ``Controls.apply(dreamed, base, index)`` on each dreamed frame (float32 0..255),
where ``base`` is the frame as it would be without dreaming (the source image, the raw video frame,
the zoom's camera-moved previous frame). The result is what the driver keeps and carries forward.

* keep_colors: the dream's luminance with the base's chroma (YCbCr, BT.601 full range, as JPEG):
  the dream changes light and shade, the colours stay the source's.
* mask: a grey image, or a video decoded frame by frame alongside the clip, where white (255) is
  dreamed and black (0) keeps the base exactly; grey mixes. Values within 2 of black or white are
  taken as black or white (compression noise). ``mask_feather`` px: the white fades in from the
  black over that distance, INSIDE the white, so black pixels stay exactly the base's (within 1 on
  0..255, the rounding of the output). A mask of another size is resized to the frame; a mask
  video must have the clip's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

# RGB -> YCbCr (BT.601 full range, offsets 0/128/128) and back; rows are output channels.
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_FROM_YCC = np.linalg.inv(_TO_YCC).astype(np.float32)
_OFFSET = np.array([0.0, 128.0, 128.0], np.float32)
_SNAP = 2.0  # mask values within this of 0 or 255 count as black or white (JPEG/H.264 noise), 0..255


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB 0..255 -> float32 YCbCr (Y 0..255, Cb and Cr centred on 128)."""
    return np.asarray(rgb, np.float32) @ _TO_YCC.T + _OFFSET


def from_ycc(ycc: np.ndarray) -> np.ndarray:
    """Inverse of ``to_ycc``: float32 RGB, clipped to 0..255."""
    return np.clip((np.asarray(ycc, np.float32) - _OFFSET) @ _FROM_YCC.T, 0.0, 255.0)


def keep_colors(dreamed: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The dream's luminance with the source's chroma, HxWx3 float32 0..255."""
    out = to_ycc(source)
    out[..., 0] = to_ycc(dreamed)[..., 0]
    return from_ycc(out)


def mask_weights(grey: np.ndarray, size: tuple[int, int], feather: int) -> np.ndarray:
    """An HxW float32 0..1 dream weight from a grey mask (HxW or HxWx3, 0..255) for frames of
    ``size`` = (width, height): resized, snapped near black and white, feathered inside the white."""
    import cv2

    g = np.asarray(grey, np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    w, h = size
    if g.shape != (h, w):
        # Shrinking averages; enlarging takes the nearest pixel, so an enlarged black stays black
        # to its edge (bilinear would leak grey, hence dream, into it); the feather softens the edge.
        g = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA if g.shape[0] > h else cv2.INTER_NEAREST_EXACT)
    m = np.clip((g - _SNAP) / (255.0 - 2 * _SNAP), 0.0, 1.0)
    if feather > 0 and (m <= 0).any():
        # Distance (px) to the nearest black pixel; the weight ramps 0 -> 1 over ``feather`` px (smoothstep).
        dist = cv2.distanceTransform((m > 0).astype(np.uint8), cv2.DIST_L2, 5)
        t = np.clip(dist / float(feather), 0.0, 1.0)
        m = m * (t * t * (3.0 - 2.0 * t))
    return m.astype(np.float32)


def composite(dreamed: np.ndarray, base: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """weight * dreamed + (1 - weight) * base, HxWx3 float32 (weight HxW, 0..1)."""
    m = weight[..., None]
    return m * np.asarray(dreamed, np.float32) + (1.0 - m) * np.asarray(base, np.float32)


class Controls:
    """The colour and mask controls of one render. ``open`` reads and checks the mask before any frame
    is dreamed; ``apply`` is called once per dreamed frame, in increasing frame order."""

    def __init__(self, keep: bool, still: np.ndarray | None, frames: Iterator[np.ndarray] | None, feather: int):
        self.keep = keep  # keep the base's chroma
        self.still = still  # a still mask (grey, any size), or None
        self.frames = frames  # a mask video's frames, in clip order, or None
        self.feather = feather  # px
        self._next = 0  # index of the mask video frame ``frames`` yields next
        self._greys: dict[int, np.ndarray] = {}  # the last two mask video frames read, by clip index
        self._weights: dict[int, tuple[tuple[int, int], np.ndarray]] = {}  # the last two weights, by index

    @classmethod
    def open(cls, settings: Any, *, clip: str | Path | None = None) -> Controls | None:
        """The controls of ``settings`` (None when there are none). ``clip``: the video being dreamed,
        which a mask video must match in length (it is decoded with the clip's start, duration and
        frame limit); without a clip (images, zooms) the mask must be a still image."""
        d = settings.dream
        if not d.keep_colors and d.mask is None:
            return None
        still = frames = None
        if d.mask is not None:
            from .decode import iter_frames, read_image
            from .probe import check_input_file, probe

            check_input_file(d.mask, "mask")
            info = probe(d.mask)
            if not info.has_video:
                raise InputError(f"mask {d.mask!r} has no picture: give a grey image, or a video of the clip's length")
            if info.is_still:
                still = read_image(d.mask)
            elif clip is None:
                raise InputError(f"mask {d.mask!r} is a video, which needs a video input: give a still mask image")
            else:
                _check_length(Path(d.mask), info, probe(clip))
                v = settings.video
                frames = iter_frames(d.mask, start=v.start, duration=v.duration, max_frames=v.max_frames)
        return cls(d.keep_colors, still, frames, d.mask_feather)

    def weight(self, index: int, size: tuple[int, int]) -> np.ndarray | None:
        """Frame ``index``'s dream weight (HxW, 0..1) for frames of ``size`` = (width, height); None = all 1.

        Frames are asked for in increasing order; the previous frame's weight (``index - 1``) can be
        asked for again after ``index``'s (the video chain compares the two), even on a resume that
        skipped the frames before it.
        """
        if self.still is None and self.frames is None:
            return None
        key = 0 if self.still is not None else index  # a still mask weighs every frame alike
        hit = self._weights.get(key)
        if hit is not None and hit[0] == size:
            return hit[1]
        grey = self.still if self.still is not None else self._grey(index)
        w = mask_weights(grey, size, self.feather)
        self._weights[key] = (size, w)
        for old in [k for k in self._weights if k < key - 1]:
            del self._weights[old]
        return w

    def _grey(self, index: int) -> np.ndarray:
        """The mask video's frame ``index`` (read on, keeping the last two)."""
        assert self.frames is not None
        while self._next <= index:
            grey = next(self.frames, None)
            if grey is None:
                raise InputError(
                    f"the mask video ends before frame {index} of the clip: give a mask of the clip's length"
                )
            self._greys[self._next] = grey
            self._greys.pop(self._next - 2, None)
            self._next += 1
        assert index in self._greys, "mask frames are asked for in increasing order (one step back at most)"
        return self._greys[index]

    def apply(self, dreamed: np.ndarray, base: np.ndarray, index: int = 0) -> np.ndarray:
        """Frame ``index`` with the controls applied: HxWx3 float32 0..255."""
        out = keep_colors(dreamed, base) if self.keep else np.asarray(dreamed, np.float32)
        weight = self.weight(index, (base.shape[1], base.shape[0]))
        return out if weight is None else composite(out, base, weight)


def _check_length(mask: Path, info: Any, clip: Any) -> None:
    """A mask video must last as many frames as its clip (within one frame): InputError otherwise."""

    def frames(i: Any) -> float | None:
        return float(i.duration * i.fps) if i.duration and i.fps else (float(i.frame_count) if i.frame_count else None)

    have, want = frames(info), frames(clip)
    if have is not None and want is not None and abs(have - want) > 1.0:
        raise InputError(
            f"mask {str(mask)!r} lasts {have:.0f} frames and the clip {want:.0f}: "
            "give a mask video of the clip's length (or a still mask image)"
        )


__all__ = ["Controls", "keep_colors", "mask_weights", "composite", "to_ycc", "from_ycc"]
