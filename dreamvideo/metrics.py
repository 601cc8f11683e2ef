"""How well a dreamed video holds together: the figures of ``--report`` and of bench/bench_coherence.py.

One implementation for both, so a report and the bench agree on the same clip. Frames are HxWx3
uint8; every figure is on the 0..255 scale unless said otherwise.

* flicker: occlusion-masked mean |out_t - warp(out_t-1)| along the INPUT's backward flow, over the
  same for the input (1.0 = as steady as the source along its own motion);
* strength: mean |out - in|; settled strength: its mean over the second half of the frames;
  scratch: the strength of a few sampled frames of that half dreamed from scratch at the same
  settings (``scratch_indices``), and settled / scratch;
* growth: mean strength of the last quarter of the frames over the first quarter;
* moving / static: strength on pixels moving more than 1 px/frame over strength on pixels moving
  less than 0.25 px/frame (is a walking person dreamed like the floor?);
* drift: slope of the brightness offset mean(out) - mean(in), per 100 frames.

``report_figure`` draws input and output side by side at several frames above a per-frame plot of
strength and flicker, as a uint8 image (encode.write_image writes it).
"""

from __future__ import annotations

import numpy as np

MOVING_PX = 1.0  # px/frame above which a pixel counts as moving
STATIC_PX = 0.25  # px/frame below which a pixel counts as static
THUMB_WIDTH = 240  # pixels, width of one frame in the report figure
_KEEP_THUMBS = 32  # at most this many (input, output) thumbnails kept for the figure


def scratch_indices(n_frames: int, count: int = 3) -> list[int]:
    """Frames of the second half of an ``n_frames`` clip dreamed from scratch for the strength ratio."""
    if n_frames <= 0:
        return []
    half = n_frames // 2
    span = n_frames - half
    return sorted({min(n_frames - 1, half + int(span * (i + 0.5) / count)) for i in range(count)})


class Metrics:
    """Accumulates the figures frame by frame (one remap and a few means per frame)."""

    def __init__(self, keep_thumbs: bool = False) -> None:
        self.index: list[int] = []  # frame index of each added frame
        self.strength: list[float] = []  # mean |out - in| per frame
        self.offset: list[float] = []  # mean(out) - mean(in) per frame: brightness drift
        self.flicker_out: dict[int, float] = {}  # frame index -> masked mean |out_t - warp(out_t-1)|
        self.flicker_in: dict[int, float] = {}  # the same on the input
        self.moving = [0.0, 0]  # sum of |out - in| (channel mean) over moving pixels, pixel count
        self.static = [0.0, 0]  # the same over static pixels
        self.scratch: dict[int, float] = {}  # frame index -> strength of its from-scratch dream
        self.keep_thumbs = keep_thumbs
        self.thumbs: list[tuple[int, np.ndarray, np.ndarray]] = []  # (index, input, output) thumbnails
        self._stride = 1

    def add(self, raw: np.ndarray, out: np.ndarray, prev_raw: np.ndarray | None, prev_out: np.ndarray | None,
            coh: tuple | None, cut: bool, index: int | None = None) -> None:
        """Frame ``index`` (raw, out) after (prev_raw, prev_out); ``coh`` = (flow_bw, mask, unexplained)."""
        from .flow import warp

        index = len(self.index) if index is None else int(index)
        r, o = raw.astype(np.float32), out.astype(np.float32)
        diff = np.abs(o - r).mean(axis=2)
        self.index.append(index)
        self.strength.append(float(diff.mean()))
        self.offset.append(float(o.mean() - r.mean()))
        if coh is not None:
            flow_bw, mask, _ = coh
            speed = np.hypot(flow_bw[..., 0], flow_bw[..., 1])
            mov, sta = speed > MOVING_PX, speed < STATIC_PX
            self.moving[0] += float(diff[mov].sum())
            self.moving[1] += int(mov.sum())
            self.static[0] += float(diff[sta].sum())
            self.static[1] += int(sta.sum())
            if prev_out is not None and prev_raw is not None and not cut:
                m = mask[..., None]
                wsum = float(m.sum()) * 3 + 1e-6
                w_out = warp(prev_out.astype(np.float32), flow_bw)
                w_in = warp(prev_raw.astype(np.float32), flow_bw)
                self.flicker_out[index] = float((np.abs(o - w_out) * m).sum() / wsum)
                self.flicker_in[index] = float((np.abs(r - w_in) * m).sum() / wsum)
        if self.keep_thumbs:
            self._keep(index, raw, out)

    def add_scratch(self, index: int, raw: np.ndarray, scratch: np.ndarray) -> None:
        """The from-scratch dream of frame ``index`` at the same settings (for settled / scratch)."""
        self.scratch[int(index)] = float(np.abs(scratch.astype(np.float32) - raw.astype(np.float32)).mean())

    def _keep(self, index: int, raw: np.ndarray, out: np.ndarray) -> None:
        import cv2

        if index % self._stride:
            return
        h, w = raw.shape[:2]
        size = (THUMB_WIDTH, max(2, round(h * THUMB_WIDTH / w)))
        interp = cv2.INTER_AREA if w > THUMB_WIDTH else cv2.INTER_LINEAR
        self.thumbs.append((index, cv2.resize(raw, size, interpolation=interp),
                            cv2.resize(out, size, interpolation=interp)))
        if len(self.thumbs) >= _KEEP_THUMBS:  # keep every other one: memory stays bounded on long clips
            self._stride *= 2
            self.thumbs = [t for t in self.thumbs if t[0] % self._stride == 0]

    def per_frame_flicker(self) -> list[tuple[int, float]]:
        """(index, flicker of that frame over the clip's mean input flicker): their mean is the flicker."""
        mean_in = float(np.mean(list(self.flicker_in.values()))) if self.flicker_in else 0.0
        return [(i, v / max(mean_in, 1e-6)) for i, v in sorted(self.flicker_out.items())]

    def summary(self) -> dict[str, float]:
        """flicker (1 = as steady as the source), strength, strength_settled, scratch_strength,
        settled_over_scratch, growth, moving_over_static, drift_per_100_frames (see the module doc)."""
        out: dict[str, float] = {}
        if self.flicker_in and sum(self.flicker_in.values()) > 0:
            out["flicker"] = round(float(np.mean(list(self.flicker_out.values()))
                                         / max(np.mean(list(self.flicker_in.values())), 1e-6)), 4)
        n = len(self.strength)
        if n:
            s = np.array(self.strength)
            out["strength"] = round(float(s.mean()), 3)
            out["strength_settled"] = round(float(s[n // 2:].mean()), 3)
            if self.scratch:
                scratch = float(np.mean(list(self.scratch.values())))
                out["scratch_strength"] = round(scratch, 3)
                out["settled_over_scratch"] = round(float(s[n // 2:].mean()) / max(scratch, 1e-6), 4)
            if n >= 4:
                q = n // 4
                out["growth"] = round(float(s[-q:].mean() / max(s[:q].mean(), 1e-6)), 4)
        if self.moving[1] and self.static[1]:
            moving, static = self.moving[0] / self.moving[1], self.static[0] / self.static[1]
            out["moving_over_static"] = round(moving / max(static, 1e-6), 4)
        if len(self.offset) >= 2:
            slope = np.polyfit(np.array(self.index, dtype=np.float64), np.array(self.offset), 1)[0]
            out["drift_per_100_frames"] = round(float(slope * 100), 3)
        return out


def report_figure(metrics: Metrics, title: str = "", columns: int = 4) -> np.ndarray:
    """Input and output side by side at up to ``columns`` frames, above a per-frame plot of strength
    (0..255, left scale) and flicker (right scale, 1 = the source's): an HxWx3 uint8 RGB image."""
    import cv2

    thumbs = metrics.thumbs
    if len(thumbs) > columns:
        picks = np.linspace(0, len(thumbs) - 1, columns).round().astype(int)
        thumbs = [thumbs[i] for i in picks]
    pair_w = 2 * THUMB_WIDTH + 8
    per_row = 2  # two (input | output) pairs a row
    width = per_row * (pair_w + 8)
    cells = []
    label_h = 18
    for index, raw, out in thumbs:
        th = raw.shape[0]
        cell = np.full((th + label_h, pair_w, 3), 255, np.uint8)
        cell[label_h:, :THUMB_WIDTH] = raw
        cell[label_h:, THUMB_WIDTH + 8:THUMB_WIDTH + 8 + THUMB_WIDTH] = out
        s = metrics.strength[metrics.index.index(index)] if index in metrics.index else float("nan")
        cv2.putText(cell, f"frame {index}: input | output (strength {s:.1f})", (2, 13), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cells.append(cell)
    rows = []
    for i in range(0, len(cells), per_row):
        row = np.full((max(c.shape[0] for c in cells[i:i + per_row]), width, 3), 255, np.uint8)
        x = 4
        for c in cells[i:i + per_row]:
            row[:c.shape[0], x:x + c.shape[1]] = c
            x += c.shape[1] + 8
        rows.append(row)
    rows.append(_plot(metrics, width, title))
    return np.concatenate(rows, axis=0)


def _plot(metrics: Metrics, width: int, title: str, height: int = 260) -> np.ndarray:
    """Per-frame strength (blue, left scale) and flicker (red, right scale) over frame index."""
    import cv2

    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 48, 48, 40, 30
    pw, ph = width - left - right, height - top - bottom
    cv2.rectangle(img, (left, top), (left + pw, top + ph), (160, 160, 160), 1)
    summary = metrics.summary()
    head = "  ".join(f"{k} {v:g}" for k, v in summary.items() if k in (
        "flicker", "settled_over_scratch", "growth", "moving_over_static", "drift_per_100_frames"))
    cv2.putText(img, (title + "  " if title else "") + head, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    cv2.putText(img, "strength |out-in| (blue, left)   flicker per frame, 1 = source (red, right)", (4, 32),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    if not metrics.index:
        return img
    i0, i1 = min(metrics.index), max(max(metrics.index), min(metrics.index) + 1)

    def xpos(i: float) -> int:
        return round(left + (i - i0) / (i1 - i0) * pw)

    def series(points: list[tuple[int, float]], vmax: float, colour: tuple[int, int, int]) -> None:
        if len(points) >= 2:
            pts = np.array([[xpos(i), round(top + ph - min(v / vmax, 1.0) * ph)] for i, v in points], np.int32)
            cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
        elif points:
            i, v = points[0]
            cv2.circle(img, (xpos(i), round(top + ph - min(v / vmax, 1.0) * ph)), 2, colour, -1)

    s_max = max(max(metrics.strength) * 1.1, 1.0)
    flick = metrics.per_frame_flicker()
    f_max = max(max([v for _, v in flick], default=1.0) * 1.1, 2.0)
    series(list(zip(metrics.index, metrics.strength)), s_max, (40, 80, 220))
    series(flick, f_max, (220, 40, 40))
    if metrics.scratch:
        for i, v in metrics.scratch.items():  # from-scratch strength of the sampled frames
            cv2.drawMarker(img, (xpos(i), round(top + ph - min(v / s_max, 1.0) * ph)), (40, 80, 220),
                           cv2.MARKER_CROSS, 8, 1)
    y1 = top + ph - round(1.0 / f_max * ph)
    cv2.line(img, (left, y1), (left + pw, y1), (240, 170, 170), 1)  # flicker 1 = as steady as the source
    font = cv2.FONT_HERSHEY_SIMPLEX
    for frac in (0.0, 0.5, 1.0):
        y = round(top + ph - frac * ph)
        cv2.putText(img, f"{s_max * frac:.0f}", (4, y + 4), font, 0.35, (40, 80, 220), 1, cv2.LINE_AA)
        cv2.putText(img, f"{f_max * frac:.1f}", (left + pw + 4, y + 4), font, 0.35, (220, 40, 40), 1, cv2.LINE_AA)
    for i in np.linspace(i0, i1, 5):
        cv2.putText(img, f"{round(i)}", (xpos(i) - 8, top + ph + 16), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "frame", (left + pw // 2 - 16, height - 2), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return img
