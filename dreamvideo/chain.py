"""The coherent video chain, free of I/O: raw frames (and their flow) in, dreamed frames out.

For each frame t after the first of a shot (all on INPUT-frame flow, flow.py):
  1. backward flow t -> t-1 and a forward-backward reliability mask m (1 = the warp is trusted);
  2. the previous dream's detail (dream minus raw), or the whole dreamed frame (``warp``), is moved
     onto frame t (``warp_kernel``: bilinear low-passes the carried detail a little every frame;
     "cubic" keeps it, clamped to the neighbourhood so it cannot ring);
  3. seed = raw + m * carried detail: where the flow cannot be trusted (disocclusions, content
     entering the frame, motion boundaries) the seed is the raw frame;
  4. the seeded frame is dreamed with ``warm_steps`` over ``warm_octaves``, inside the compiled
     ascent (dream.Temporal): the step is ``warm_step_scale`` of the full one where m trusts the
     carried dream and ``fresh_step_scale`` where it does not (new content reaches the look within a
     few frames), and every step pulls x back toward the warped dream by ``temporal_weight * m``
     (Ruder, Dosovitskiy and Brox 2016: the temporal loss keeps the dream where the flow says it is);
     pixels a moving mask newly uncovers (its weight rose along the flow) count as new content too;
  5. the drift control (``color_hold``) pins the brightness/colour without shrinking the dream;
  6. a frame the flow cannot explain (scene cut) restarts the chain from the raw frame;
  7. optional ``deflicker``: a flow-guided recursive filter on the output (before step 5).

The chain's only state is the previous raw and dreamed uint8 frames, exactly what is saved in the
work folder, so a resumed run continues bit for bit (the previous frame's mask weight is recomputed
from the mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import Settings
from .toolkit import channel_mean, dream_params, frame_settings, match_color, seed_for_frame, to_uint8


class VideoChain:
    """Frame t in, dreamed frame t out; keeps the previous raw and dreamed uint8 frames.

    The dreamed frame carried forward is the uint8 one, exactly what was saved, so a resumed run
    continues bit for bit (``restore``).
    """

    def __init__(self, engine: Any, settings: Settings, controls: Any = None):
        self.engine = engine
        self.settings = settings
        self.controls = controls  # controls.Controls (keep_colors, mask) or None
        self.prev_raw: np.ndarray | None = None  # HxWx3 uint8, frame t-1 of the input
        self.prev_out: np.ndarray | None = None  # HxWx3 uint8, frame t-1 of the output
        self.prev_step: float | None = None  # step_size frame t-1 was dreamed with (schedules may change it)

    def restore(self, prev_raw: np.ndarray, prev_out: np.ndarray, values: dict[str, float] | None = None) -> None:
        """Continue after frame t-1 (a resume); ``values`` are frame t-1's per-frame setting values."""
        self.prev_raw, self.prev_out = prev_raw, prev_out
        self.prev_step = float((values or {}).get("step_size", self.settings.dream.step_size))

    def step(
        self, index: int, raw: np.ndarray, coh: tuple | None, values: dict[str, float] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Dream frame ``index``. ``coh`` = (flow_bw, mask, unexplained) for t-1 -> t, None for a first frame.

        ``values`` are per-frame overrides of flat settings (schedules, audio reactions).
        Returns (dreamed uint8 frame, info with 'cut' and 'seeded').
        """
        from .dream import Temporal
        from .flow import is_scene_cut, warp, warp_sharp

        frame = frame_settings(self.settings, values)  # this frame's settings, overrides validated
        d, v = frame.dream, frame.video
        step_now = float(d.step_size)
        rawf = raw.astype(np.float32)
        cut = coh is not None and is_scene_cut(coh[2], v.scene_cut)
        seeded = v.coherent and coh is not None and not cut and self.prev_out is not None
        temporal = None
        if seeded:
            assert self.prev_out is not None and self.prev_raw is not None
            flow_bw, mask, _ = coh
            m = (mask + v.carry_untrusted * (1.0 - mask))[..., None]  # share of the warped dream kept in the seed
            move = warp if v.warp_kernel == "linear" else warp_sharp
            prev_out = self.prev_out.astype(np.float32)
            if v.warp == "detail":
                # The carried dream follows a scheduled/reacting step size (its amplitude grows about
                # linearly with the step): scaled by this frame's step over the previous one's, 0..2.
                follow = 1.0
                if self.prev_step is not None and self.prev_step > 0:
                    follow = min(max(step_now / self.prev_step, 0.0), 2.0)
                detail = prev_out - self.prev_raw.astype(np.float32)
                seed_img = rawf + (1.0 - v.blend) * v.detail_decay * follow * m * move(detail, flow_bw)
            else:
                warped = move(prev_out, flow_bw)
                seed_img = m * ((1.0 - v.blend) * warped + v.blend * rawf) + (1.0 - m) * rawf
            seed_img = np.clip(seed_img, 0.0, 255.0)
            fresh = 1.0 - mask
            if self.controls is not None:
                # Pixels a moving mask newly uncovers carry no dream (the previous output was the raw
                # frame there), though the flow trusts them: they are new content too.
                fresh = np.maximum(fresh, self.mask_rise(index, flow_bw))
            if v.catch_up > 0:
                fresh = np.maximum(fresh, v.catch_up * strength_deficit(seed_img - rawf, mask))
            # The warm-frame rule at the full step; the step map then scales it per pixel:
            # warm_step_scale on the trusted carried dream, fresh_step_scale on new content; the pull
            # keeps the trusted dream where the flow put it.
            params = dream_params(frame, warm=True, step_scale=1.0)
            step_scale = (1.0 - fresh) * v.warm_step_scale + fresh * v.fresh_step_scale
            temporal = Temporal(
                target=seed_img, pull=np.float32(v.temporal_weight) * (1.0 - fresh), step_scale=step_scale
            )
        else:
            seed_img = rawf
            params = dream_params(frame, warm=False)
        out = self.engine.dream(seed_img, params, seed=seed_for_frame(d.seed, index), temporal=temporal)
        if seeded and v.deflicker > 0:  # before the drift control, which then pins what it shifted
            out = deflicker(out, self.prev_out, coh[0], coh[1], v.deflicker)
        if v.color_match:
            if seeded and v.color_hold == "offset":
                out = hold_offset(out, rawf, self.prev_out, self.prev_raw)
            else:
                out = match_color(out, rawf)
        if self.controls is not None:
            out = self.controls.apply(out, rawf, index)
        out8 = to_uint8(out)
        self.prev_raw, self.prev_out, self.prev_step = raw, out8, step_now
        return out8, {"cut": bool(cut), "seeded": seeded}

    def mask_rise(self, index: int, flow_bw: np.ndarray) -> np.ndarray:
        """How much frame ``index``'s mask weight rose over frame index-1's, carried along the flow: HxW 0..1.

        Where the previous dream landing on a pixel was masked off (weight w_prev at the flow's source)
        and the pixel is dreamed now (w_now), the carried detail holds only w_prev of a dream:
        max(w_now - warp(w_prev), 0) of the pixel is new content. Zeros without a mask. The previous
        weight is recomputed from the mask, not kept, so the chain's state stays the saved frames.
        """
        from .flow import warp

        h, w = flow_bw.shape[:2]
        now = self.controls.weight(index, (w, h)) if self.controls is not None else None
        if now is None:
            return np.zeros((h, w), np.float32)
        before = self.controls.weight(index - 1, (w, h))
        assert before is not None
        return np.clip(now - warp(before, flow_bw), 0.0, 1.0).astype(np.float32)


def strength_deficit(carried: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """How far below the frame's typical dream strength each pixel's carried dream is: HxW float32 0..1.

    ``carried`` is the dream detail landed on the frame (HxWx3, 0..255 scale), ``mask`` the flow's
    reliability. The local strength (mean |detail| over channels, Gaussian-blurred over about 1/48 of
    the short side) is compared with its mean over trusted pixels: 0 where the pixel carries as much
    dream as the frame does, 1 where it carries none (content that moved in and was not dreamed yet).
    """
    import cv2

    local = np.abs(carried).mean(axis=2).astype(np.float32)
    sigma = max(2.0, min(local.shape) / 48.0)
    local = cv2.GaussianBlur(local, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    trusted = mask > 0.5
    ref = float(local[trusted].mean()) if trusted.any() else float(local.mean())
    if ref <= 1e-3:
        return np.zeros_like(local)
    return np.clip(1.0 - local / ref, 0.0, 1.0)


def hold_offset(out: np.ndarray, raw: np.ndarray, prev_out: np.ndarray, prev_raw: np.ndarray) -> np.ndarray:
    """Pin the per-channel mean of (out - raw) to the previous frame's (float32 0..255 in and out).

    The drift control of seeded frames: brightness and colour cannot wander over hundreds of frames,
    and, unlike holding the std to the raw frame's, the dream's contrast is not shrunk every frame.
    """
    buf = prev_out.astype(np.float32)  # one HxWx3 scratch buffer for the differences (1280x720: 11 MB)
    buf -= prev_raw
    want = channel_mean(buf)
    out = np.array(out, dtype=np.float32)  # the caller's array is left as it was
    for _ in range(3):  # measured on the saved uint8 frame: clipping and rounding eat part of a shift
        np.rint(out, out=buf)
        np.clip(buf, 0.0, 255.0, out=buf)
        buf -= raw
        out += want - channel_mean(buf)
        np.clip(out, 0.0, 255.0, out=out)
    return out


def deflicker(
    out: np.ndarray, prev_out: np.ndarray, flow_bw: np.ndarray, mask: np.ndarray, strength: float
) -> np.ndarray:
    """Flow-guided temporal filter: mix ``strength`` (0..1) of the warped previous output in where the
    flow is trusted (float32 0..255 out). Steadier frames at some cost in crispness."""
    from .flow import warp

    a = (float(strength) * mask)[..., None]
    return (1.0 - a) * out + a * warp(prev_out.astype(np.float32), flow_bw)
