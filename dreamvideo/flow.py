"""Optical flow between input frames, warping, occlusion masks and scene-cut detection.

Video dreaming seeds frame t with the previous dreamed frame warped by the flow of the *input*
frames, so the dream moves with the scene. This module is the flow stage; it uses numpy and OpenCV
only (never TensorFlow) and does no work at import time.

Conventions
-----------
* Frames are HxWx3 uint8 RGB (HxW uint8 grayscale is accepted too).
* A flow is HxWx2 float32, ``flow[y, x] = (dx, dy)`` in pixels.
* The *backward* flow of frame t (``FlowEstimator.backward(cur, prev)``) says, for each pixel x of
  frame t, where it was in frame t-1: ``cur(x) ~ prev(x + flow(x))``. Hence
  ``warp(prev_thing, flow_bw)`` lands anything aligned with frame t-1 on frame t.
* The *forward* flow (``FlowEstimator.forward(cur, prev)``) goes from t-1 to t and is only needed
  for the forward-backward consistency check in :func:`occlusion_mask`.

Thread safety: a :class:`FlowEstimator` holds one OpenCV DIS instance, reused for every call
(creating one per frame is waste). DIS objects are *not* thread-safe: give each thread its own
estimator.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .config import FLOWS as FLOW_METHODS  # one list of methods, shared with the settings check
from .errors import ConfigError

# Farneback parameters (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma). The common
# (0.5, 3, 15, 3, 5, 1.2) fails on large motion; these hold (see FIELD-NOTES, OpenCV).
FARNEBACK_PARAMS = (0.5, 5, 21, 5, 7, 1.5)

# Forward-backward consistency constants from Ruder, Dosovitskiy & Brox (2016), "Artistic style
# transfer for videos", section 4 (disocclusions and motion boundaries).
_FB_REL, _FB_ABS = 0.01, 0.5
_MB_REL, _MB_ABS = 0.01, 0.002

# Photometric error (mean abs over channels, 0..255 scale) above which coherence() counts a pixel as
# unexplained even where the flow is self-consistent.
PHOTO_THRESHOLD = 30.0


class FlowEstimator:
    """Dense optical flow between two RGB frames with a reusable OpenCV backend.

    ``method`` is one of :data:`FLOW_METHODS`. ``max_side`` (pixels) computes the flow on frames
    downscaled so their longer side is at most ``max_side`` and upscales the field (vectors scaled
    by the size ratio): a speed knob; ``None`` keeps full resolution.

    Not thread-safe (the DIS instance is shared between calls): one estimator per thread.
    """

    def __init__(self, method: str = "dis-fast", max_side: int | None = None):
        if method not in FLOW_METHODS:
            raise ConfigError(f"flow method {method!r} is unknown: use one of {', '.join(FLOW_METHODS)}")
        if max_side is not None and (not isinstance(max_side, (int, np.integer)) or max_side < 16):
            raise ConfigError(f"flow max_side must be an integer >= 16 pixels or None, got {max_side!r}")
        self.method = method
        self.max_side = None if max_side is None else int(max_side)
        self._dis: Any = None  # created on first use, then reused

    def __repr__(self) -> str:
        return f"FlowEstimator(method={self.method!r}, max_side={self.max_side!r})"

    # -- public -------------------------------------------------------------------------------
    def backward(self, cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """Flow from frame t (``cur``) to t-1 (``prev``): HxWx2 float32, ``cur(x) ~ prev(x + f(x))``."""
        return self._flow(cur, prev)

    def forward(self, cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
        """Flow from frame t-1 (``prev``) to t (``cur``): HxWx2 float32, ``prev(x) ~ cur(x + f(x))``."""
        return self._flow(prev, cur)

    # -- internals ----------------------------------------------------------------------------
    def _flow(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow f on ``src``'s grid with ``src(x) ~ dst(x + f(x))``."""
        g0, g1 = _gray(src, "cur/prev"), _gray(dst, "cur/prev")
        if g0.shape != g1.shape:
            raise ValueError(f"frames differ in size: {src.shape[:2]} vs {dst.shape[:2]}")
        h, w = g0.shape
        small = self._small_size(w, h)
        if small is not None:
            g0 = cv2.resize(g0, small, interpolation=cv2.INTER_AREA)
            g1 = cv2.resize(g1, small, interpolation=cv2.INTER_AREA)
        flow = self._compute(g0, g1)
        if small is not None:
            sw, sh = small
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= w / sw
            flow[..., 1] *= h / sh
        return np.ascontiguousarray(flow, dtype=np.float32)

    def _small_size(self, w: int, h: int) -> tuple[int, int] | None:
        if self.max_side is None or max(w, h) <= self.max_side:
            return None
        s = self.max_side / max(w, h)
        return (max(8, round(w * s)), max(8, round(h * s)))

    def _compute(self, g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
        if self.method == "farneback":
            return cv2.calcOpticalFlowFarneback(g0, g1, None, *FARNEBACK_PARAMS, 0)
        if self._dis is None:
            preset = {
                "dis-fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
            }[self.method]
            self._dis = cv2.DISOpticalFlow_create(preset)
        return self._dis.calc(g0, g1, None)


def _gray(img: np.ndarray, name: str) -> np.ndarray:
    """Contiguous uint8 grayscale, as DIS wants it."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 frames, got {img.dtype}")
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"{name} must be HxWx3 RGB (or HxW gray), got shape {img.shape}")


def _check_flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{name} must be HxWx2, got shape {flow.shape}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.indices((h, w), dtype=np.float32)
    return xs, ys


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` at ``x + flow(x)`` (bilinear, borders replicated); same shape and dtype out.

    With the backward flow of frame t, this lands an image aligned with frame t-1 on frame t.
    ``img`` is HxW or HxWxC (any C); float32, float64 or uint8.
    """
    img = np.asarray(img)
    flow = _check_flow(flow)
    h, w = flow.shape[:2]
    if img.shape[:2] != (h, w):
        raise ValueError(f"image {img.shape[:2]} and flow {flow.shape[:2]} differ in size")
    xs, ys = _grid(h, w)
    mx = xs + flow[..., 0]
    my = ys + flow[..., 1]
    src = np.ascontiguousarray(img)
    if src.ndim == 3 and src.shape[2] > 4:  # remap handles at most 4 channels at once
        return np.stack(
            [cv2.remap(src[..., c], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
             for c in range(src.shape[2])], axis=-1)
    out = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if src.ndim == 3 and out.ndim == 2:  # a single channel comes back squeezed
        out = out[..., None]
    return out


def warp_sharp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Like :func:`warp`, with a bicubic kernel clamped to the source's 3x3 neighbourhood range.

    Repeated bilinear warps low-pass what they carry (a dream chain loses its detail); bicubic
    keeps it but overshoots at edges, and the overshoot compounds into ringing frame after frame.
    Clamping each sample between the (bilinearly warped) 3x3 min and max of the source keeps the
    sharpness and removes the overshoot. ``img`` is HxWxC float32 (C <= 4); same shape out.
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    flow = _check_flow(flow)
    h, w = flow.shape[:2]
    if img.shape[:2] != (h, w):
        raise ValueError(f"image {img.shape[:2]} and flow {flow.shape[:2]} differ in size")
    xs, ys = _grid(h, w)
    mx = xs + flow[..., 0]
    my = ys + flow[..., 1]
    kernel = np.ones((3, 3), np.uint8)
    out = cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    lo = cv2.remap(cv2.erode(img, kernel), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hi = cv2.remap(cv2.dilate(img, kernel), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out = np.minimum(np.maximum(out, lo), hi)
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def occlusion_mask(flow_bw: np.ndarray, flow_fw: np.ndarray, soften: bool = True) -> np.ndarray:
    """Reliability of the backward flow: HxW float32 in [0, 1], 1 = the warped pixel can be trusted.

    ``flow_bw`` is the flow t -> t-1 (on frame t's grid), ``flow_fw`` the flow t-1 -> t (on frame
    t-1's grid). Following Ruder et al. (2016), a pixel x of frame t is unreliable where

    * forward-backward inconsistent (disocclusion): with ``w = flow_bw(x)`` and
      ``f = flow_fw(x + w)``, ``|w + f|^2 > 0.01 (|w|^2 + |f|^2) + 0.5``;
    * on a motion boundary: ``|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002`` (central
      differences of the backward flow);
    * ``x + w`` falls outside frame t-1 (content entering the view has nothing to warp from).

    Softening (``soften=True``): the unreliable set is dilated by one pixel (3x3), because flow
    errors bleed a pixel or so past the detected boundary, then the binary mask is blurred with a
    Gaussian (sigma 1.5 px, 7x7) so the seam between warped dream and fresh content is not a hard
    edge. Interior of regions keeps 1.0 / 0.0; a boundary crosses 0.5 about where the dilated hard
    edge was. ``soften=False`` returns the hard {0, 1} mask.
    """
    bw = _check_flow(flow_bw, "flow_bw")
    fw = _check_flow(flow_fw, "flow_fw")
    if bw.shape != fw.shape:
        raise ValueError(f"flow_bw {bw.shape} and flow_fw {fw.shape} differ in size")
    h, w = bw.shape[:2]
    xs, ys = _grid(h, w)
    u, v = cv2.split(bw)  # per-channel work: numpy reductions over a length-2 axis are slow
    px = xs + u
    py = ys + v
    fu, fv = cv2.split(cv2.remap(fw, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

    bw2 = u * u + v * v
    su, sv = u + fu, v + fv
    inconsistent = su * su + sv * sv > _FB_REL * (bw2 + fu * fu + fv * fv) + _FB_ABS

    grad2 = np.zeros_like(u)
    for c in (u, v):  # central differences, (f[x+1] - f[x-1]) / 2
        for dx, dy in ((1, 0), (0, 1)):
            g = cv2.Sobel(c, cv2.CV_32F, dx, dy, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
            grad2 += g * g
    boundary = grad2 > _MB_REL * bw2 + _MB_ABS

    outside = (px < -0.5) | (px > w - 0.5) | (py < -0.5) | (py > h - 0.5)

    unreliable = (inconsistent | boundary | outside).astype(np.uint8)
    if not soften:
        return (1 - unreliable).astype(np.float32)
    unreliable = cv2.dilate(unreliable, np.ones((3, 3), np.uint8))
    mask = 1.0 - unreliable.astype(np.float32)
    mask = cv2.GaussianBlur(mask, (7, 7), 1.5, borderType=cv2.BORDER_REPLICATE)
    return np.clip(mask, 0.0, 1.0, out=mask)


def photometric_error(cur: np.ndarray, prev: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Per-pixel mean abs difference (0..255 scale, HxW float32) of ``warp(prev, flow_bw)`` vs ``cur``."""
    cur, prev = np.asarray(cur), np.asarray(prev)
    if cur.dtype == np.uint8 and prev.dtype == np.uint8:  # fast path; uint8 warp rounds by <= 0.5
        diff = cv2.absdiff(warp(prev, flow_bw), np.ascontiguousarray(cur))
    else:
        diff = np.abs(warp(prev.astype(np.float32), flow_bw) - cur.astype(np.float32))
    if diff.ndim == 2:
        return diff.astype(np.float32)
    chans = cv2.split(diff) if diff.shape[2] <= 4 else [diff[..., c] for c in range(diff.shape[2])]
    err = chans[0].astype(np.float32)
    for c in chans[1:]:
        err += c
    err *= 1.0 / len(chans)
    return err


def coherence(
    cur: np.ndarray,
    prev: np.ndarray,
    estimator: FlowEstimator,
    photo_threshold: float = PHOTO_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Both flows, the reliability mask and how much of frame t the flow cannot explain.

    Returns ``(flow_bw, mask, unexplained_fraction)``: ``flow_bw`` (t -> t-1) for :func:`warp`,
    ``mask`` from :func:`occlusion_mask`, and the fraction of pixels of ``cur`` where
    ``mask < 0.5`` or the warped ``prev`` differs from ``cur`` by more than ``photo_threshold``
    (mean abs over channels, 0..255; the difference image is smoothed with a 5x5 box first so
    single-pixel aliasing at sharp edges does not count). Feed the fraction to
    :func:`is_scene_cut`.
    """
    flow_bw = estimator.backward(cur, prev)
    flow_fw = estimator.forward(cur, prev)
    mask = occlusion_mask(flow_bw, flow_fw)
    err = cv2.blur(photometric_error(cur, prev, flow_bw), (5, 5))
    unexplained = (mask < 0.5) | (err > photo_threshold)
    return flow_bw, mask, float(unexplained.mean())


def is_scene_cut(unexplained_fraction: float, threshold: float) -> bool:
    """True when more than ``threshold`` (0..1) of the frame is unexplained by the flow."""
    return bool(unexplained_fraction > threshold)
