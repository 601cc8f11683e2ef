"""Benchmark the flow stage: speed and warp quality of each flow method, against dis-fast.

Run:  python bench/bench_flow.py [--pairs 40] [--start 100]

Inputs (shared media; folder from env DREAMVIDEO_SHARED, else <repo>/../shared):
  * consecutive vtest.avi frames resized to 640x360 (static camera, walking people);
  * the Middlebury rubberwhale1 -> rubberwhale2 pair.

For each method it prints, per data set:
  ms/flow   median time of one backward flow (one frame pair)
  ms/coh    median time of coherence(): both flows + occlusion mask + photometric error
  MAE all   mean abs error (0..255) of warp(prev, flow_bw) vs cur over all pixels
  MAE rel   the same within the method's own reliable mask (mask >= 0.5)
  MAE mov   within the moving pixels (|cur - prev| > 12 before warping), where flow matters
  rel%      share of pixels the mask calls reliable
  unexpl    coherence()'s unexplained fraction (scene-cut statistic)
and ratios of time and MAE against dis-fast measured in the same run. "no warp" is the baseline of
leaving prev where it is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import shared_dir  # noqa: E402
from dreamvideo.flow import FlowEstimator, coherence, warp  # noqa: E402

CONFIGS = [
    ("dis-fast", None),
    ("dis-medium", None),
    ("farneback", None),
    ("dis-fast", 320),
]


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def vtest_pairs(path: Path, start: int, n: int, size=(640, 360)) -> list[tuple[np.ndarray, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    i = 0
    while len(frames) < n + 1:
        ok, f = cap.read()
        if not ok:
            break
        if i >= start:
            frames.append(cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    if len(frames) < 2:
        raise SystemExit(f"could not decode frames from {path}")
    return [(frames[k + 1], frames[k]) for k in range(len(frames) - 1)]  # (cur, prev)


def measure(est: FlowEstimator, pairs, repeat: int = 1) -> dict[str, float]:
    est.backward(*pairs[0])  # warm-up (creates the DIS instance, pages in code)
    t_flow, t_coh, all_e, rel_e, mov_e, rel, unex, nowarp, nowarp_mov = [], [], [], [], [], [], [], [], []
    for cur, prev in pairs:
        for _ in range(repeat):
            t = time.perf_counter()
            est.backward(cur, prev)
            t_flow.append(time.perf_counter() - t)
        t = time.perf_counter()
        flow, mask, frac = coherence(cur, prev, est)
        t_coh.append(time.perf_counter() - t)
        c = cur.astype(np.float32)
        p = prev.astype(np.float32)
        err = np.abs(warp(p, flow) - c).mean(-1)
        raw = np.abs(p - c).mean(-1)
        moving = raw > 12
        good = mask >= 0.5
        all_e.append(err.mean())
        rel_e.append(err[good].mean() if good.any() else float("nan"))
        if moving.any():
            mov_e.append(err[moving].mean())
            nowarp_mov.append(raw[moving].mean())
        rel.append(good.mean())
        unex.append(frac)
        nowarp.append(raw.mean())
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {
        "ms_flow": 1000 * statistics.median(t_flow),
        "ms_coh": 1000 * statistics.median(t_coh),
        "mae_all": mean(all_e),
        "mae_rel": mean(rel_e),
        "mae_mov": mean(mov_e),
        "rel": mean(rel),
        "unexpl": mean(unex),
        "nowarp": mean(nowarp),
        "nowarp_mov": mean(nowarp_mov),
    }


def table(title: str, pairs, repeat: int) -> None:
    h, w = pairs[0][0].shape[:2]
    print(f"\n## {title}: {len(pairs)} pair(s) at {w}x{h}, cv2 {cv2.__version__}, {cv2.getNumThreads()} threads")
    rows = []
    for method, max_side in CONFIGS:
        rows.append((method if max_side is None else f"{method}@{max_side}", measure(FlowEstimator(method, max_side), pairs, repeat)))
    base = rows[0][1]
    print(f"no warp: MAE all {base['nowarp']:.2f}, MAE mov {base['nowarp_mov']:.2f}")
    hdr = f"{'method':15s} {'ms/flow':>8s} {'x time':>7s} {'ms/coh':>8s} {'MAE all':>8s} {'x':>5s} {'MAE rel':>8s} {'x':>5s} {'MAE mov':>8s} {'x':>5s} {'rel%':>6s} {'unexpl':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for name, r in rows:
        print(
            f"{name:15s} {r['ms_flow']:8.1f} {r['ms_flow'] / base['ms_flow']:7.2f} {r['ms_coh']:8.1f} "
            f"{r['mae_all']:8.2f} {r['mae_all'] / base['mae_all']:5.2f} {r['mae_rel']:8.2f} {r['mae_rel'] / base['mae_rel']:5.2f} "
            f"{r['mae_mov']:8.2f} {r['mae_mov'] / base['mae_mov']:5.2f} {100 * r['rel']:6.1f} {r['unexpl']:7.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=40, help="consecutive vtest.avi frame pairs (default 40)")
    ap.add_argument("--start", type=int, default=100, help="first vtest.avi frame (default 100)")
    ap.add_argument("--repeat", type=int, default=10, help="timing repeats for the rubberwhale pair (default 10)")
    args = ap.parse_args()
    media = shared_dir() / "media"
    if not media.is_dir():
        raise SystemExit(f"shared media not found at {media} (set DREAMVIDEO_SHARED)")
    table("vtest.avi", vtest_pairs(media / "vtest.avi", args.start, args.pairs), repeat=1)
    rw = [(read_rgb(media / "rubberwhale2.png"), read_rgb(media / "rubberwhale1.png"))]
    table("rubberwhale1 -> rubberwhale2", rw, repeat=args.repeat)
    print("\nx = ratio against dis-fast (same run); lower is better for every column but rel%.")


if __name__ == "__main__":
    main()
