"""Whole-render figures: a coherent render at the defaults against the classic loop, at equal strength.

Run:  python bench/bench_render.py [--models efficientnet_lite0,inception_v3] [--sizes 640x360,1280x720]
                                   [--frames 10] [--json]

For each model and size, on the same clip (vtest.avi from frame 100, bench.common.make_clip):
  coherent  ``render.render_video`` itself (the public path, at whatever the defaults are) writes
            the clip as PNG frames; each frame's time comes from its progress callback, so "first"
            is the from-scratch first frame and "warm" the median of the later ones; "clip" is the
            whole render's wall time over its frames. Strength is mean |out - in| (0..255) of the
            written frames against the decoded input; "settled" averages the last half of the clip.
  classic   bench/classic.py: the well-known eager loop (GradientTape per step, no tf.function,
            no tiles, no jitter), every frame dreamed from its raw frame with the preset's octaves
            and step size. Its steps per octave are set so that its strength equals the coherent
            render's settled strength: two short calibration dreams on the first frame give the
            strength-per-steps slope, the interpolated step count is then timed directly on
            ``--classic-frames`` frames, and corrected once when it misses by more than 5%.
The ratio is classic seconds per frame over coherent seconds per frame (clip and warm). The model
load and the single trace happen before any timing (they are start-up, see bench_startup.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (
    Row,
    default_settings,
    inception_weights,
    make_clip,
    median,
    print_table,
    read_clip,
    strength,
)


def model_flat(name: str) -> dict | None:
    """Flat settings selecting ``name`` (inception_v3 with the shared weights), None when unavailable."""
    if name == "inception_v3":
        w = inception_weights()
        return None if w is None else {"model": "inception_v3", "weights": str(w)}
    return {"model": name, "weights": None}


def coherent_render(clip: Path, settings, frames: int, log=print) -> dict:
    """Render ``clip`` with render_video into a PNG folder; per-frame times and strengths."""
    from dreamvideo.render import render_video

    out_dir = Path(tempfile.mkdtemp(prefix="dreamvideo-bench-render-"))
    out = out_dir / "frames"
    stamps: list[float] = []
    try:
        t0 = time.perf_counter()
        result = render_video(clip, out, settings, resume=False,
                              on_progress=lambda done, total: stamps.append(time.perf_counter()))
        wall = time.perf_counter() - t0
        raws = read_clip(clip, settings.dream.max_side, frames)
        import cv2

        pngs = sorted(out.glob("*.png"))
        outs = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in pngs]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    n = min(len(outs), len(raws))
    per = np.diff([t0] + stamps).tolist()
    strengths = [strength(outs[i], raws[i]) for i in range(n)]
    half = strengths[n // 2:] if n > 1 else strengths
    r = {"frames": result.frames, "wall_s": wall, "clip_s_per_frame": wall / result.frames,
         "first_s": per[0], "warm_s": median(per[1:]), "per_frame_s": per, "strength": strengths,
         "strength_settled": float(np.mean(half)), "strength_first": strengths[0]}
    log(f"  coherent: {result.frames} frames in {wall:.1f} s, first {r['first_s']:.2f} s, warm {r['warm_s']:.2f} s, "
        f"strength first {r['strength_first']:.1f}, settled {r['strength_settled']:.1f}")
    return r


def classic_at_strength(engine, raws: list[np.ndarray], target: float, d, n_frames: int, log=print) -> dict:
    """The classic loop's steps per octave that reach ``target`` strength, and its seconds per frame there."""
    from bench.classic import ClassicDream

    c = ClassicDream(engine)

    def run(frame: np.ndarray, steps: int) -> tuple[float, float]:
        t = time.perf_counter()
        out = c.dream(frame, steps, d.step_size, d.octaves, d.octave_scale)
        return time.perf_counter() - t, strength(out, frame)

    c.step(c.tf.constant(np.zeros((96, 96, 3), np.float32)), 0.01)  # eager warm-up (kernel selection)
    lo, hi = 2, 6
    (_, s_lo), (_, s_hi) = run(raws[0], lo), run(raws[0], hi)
    log(f"  classic calibration: {lo} steps -> {s_lo:.1f}, {hi} steps -> {s_hi:.1f} (target {target:.1f})")

    def guess(a: int, sa: float, b: int, sb: float) -> int:
        slope = (sb - sa) / max(b - a, 1)
        return int(np.clip(round(b + (target - sb) / slope), 1, 200)) if slope > 1e-6 else b

    steps = guess(lo, s_lo, hi, s_hi)
    tried: list[tuple[int, float, list[float], list[float]]] = []
    for _attempt in range(2):
        times, strs = [], []
        for frame in raws[:n_frames]:
            dt, s = run(frame, steps)
            times.append(dt)
            strs.append(s)
        tried.append((steps, float(np.mean(strs)), times, strs))
        log(f"  classic at {steps} steps/oct: {np.mean(times):.2f} s/frame, strength {np.mean(strs):.1f}")
        if abs(np.mean(strs) / target - 1.0) <= 0.05:
            break
        steps = guess(hi, s_hi, steps, float(np.mean(strs))) if steps != hi else steps + 1
    steps, s_mean, times, strs = min(tried, key=lambda x: abs(x[1] - target))
    return {"steps": steps, "s_per_frame": float(np.mean(times)), "strength": s_mean, "times": times,
            "calibration": {lo: s_lo, hi: s_hi}, "tried": [(t[0], t[1]) for t in tried]}


def run(models: list[str], sizes: list[tuple[int, int]], frames: int = 10, classic_frames: int = 1,
        log=print) -> tuple[list[Row], dict]:
    from dreamvideo.dream import DreamParams, get_engine

    rows: list[Row] = []
    results: dict = {}
    for name in models:
        flat = model_flat(name)
        if flat is None:
            log(f"{name}: weights absent from shared/weights, skipped")
            rows.append(Row(f"{name}", "skipped", "weights absent from shared/weights"))
            continue
        base = default_settings(**flat)
        d, v = base.dream, base.video
        engine = get_engine(d)
        engine.dream(np.zeros((120, 160, 3), np.float32), DreamParams.from_config(d, steps=1, octaves=1))  # trace
        for (w, h) in sizes:
            log(f"{name} {w}x{h}: coherent render of {frames} frames, then the classic loop")
            clip = make_clip(w, h, frames)
            s = default_settings(**flat, max_side=w)
            r = coherent_render(clip, s, frames, log=log)
            raws = read_clip(clip, w, max(classic_frames, 1))
            c = classic_at_strength(engine, raws, r["strength_settled"], d, classic_frames, log=log)
            key = f"{name}_{w}x{h}"
            results[key] = {"coherent": r, "classic": c}
            rows += [
                Row(f"{name} {w}x{h} coherent s/frame", f"{r['clip_s_per_frame']:.2f} clip, {r['warm_s']:.2f} warm",
                    f"render_video, {r['frames']} frames: first {r['first_s']:.2f} s, warm = median of the rest "
                    f"({v.warm_steps} steps x {v.warm_octaves} oct)"),
                Row(f"{name} {w}x{h} classic s/frame", f"{c['s_per_frame']:.2f}",
                    f"eager, every frame from scratch, {c['steps']} steps x {d.octaves} oct, {len(c['times'])} frame(s)"),
                Row(f"{name} {w}x{h} strength", f"{r['strength_settled']:.1f} / {c['strength']:.1f}",
                    f"coherent settled (last half) / classic; coherent first frame {r['strength_first']:.1f}"),
                Row(f"{name} {w}x{h} classic / coherent", f"{c['s_per_frame'] / r['clip_s_per_frame']:.1f}x clip, "
                    f"{c['s_per_frame'] / r['warm_s']:.1f}x warm",
                    f"100-frame clip from these: {100 * c['s_per_frame'] / (r['first_s'] + 99 * r['warm_s']):.1f}x"),
            ]
    return rows, results


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in s.lower().split("x")) for s in text.split(",") if s]  # type: ignore[misc]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="efficientnet_lite0,inception_v3")
    ap.add_argument("--sizes", default="640x360")
    ap.add_argument("--frames", type=int, default=10, help="frames of the coherent render")
    ap.add_argument("--classic-frames", type=int, default=1, help="frames the classic loop is timed on")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    log = lambda m: print(m, file=sys.stderr, flush=True)
    rows, res = run(a.models.split(","), parse_sizes(a.sizes), a.frames, a.classic_frames, log=log)
    print_table(rows, "whole renders: coherent (render_video) against the classic loop at equal strength")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
