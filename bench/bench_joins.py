"""Benchmark the joins of a split render: how visible is the seam where two segments' chains meet?

Run:  python bench/bench_joins.py [--side 128] [--seconds 8] [--clips vtest,vtest30,tree,pan,zoomin]
                                  [--prerolls 1,2.5] [--joins 1,2,3,4] [--set key=value ...]

A split render (dreamvideo.segments) joins segment k's chain A and segment k+1's chain B, which began
``preroll`` seconds before the boundary b, by cross-fading them over the ``join`` frames b .. b+J-1.
Segment k's chain is the whole render's chain cut short (same start, seeds and schedules), so one
run of the whole render (A) and one chain started at b - P (B, through render.render_range as a
segment runs) give the joined video for every J, exactly as segments.joined_frames builds it.

Issue 13's measures, per clip and join (those of tests/test_cluster.py's real-clip test):
  step    the largest mean |frame_t - frame_t-1| (0..255) over the steps into frames b .. b+J,
          over the median step of the rest of the video;
  window  the occlusion-masked flicker (|out_t - warp(out_t-1)| over the same on the input) of the
          window b-4 .. b+J+2, over the whole video's;
both also for the unsplit render at the same frames (its own natural ratios), and the seam's size:
mean |A_b - B_b| over the median step. Targets: step <= 1.5, window <= 1.2.

The clips (longer side ``--side``, ``--seconds`` long): vtest (../shared/media/vtest.avi from frame 0:
static camera, walkers; the test's clip), vtest30 (the same from 30 s), tree (tree.avi, 15 fps,
camera shake), pan (a camera pan across starry_night.jpg, 12 fps) and zoomin (a slow zoom into
fruits.jpg, 12 fps), made with ffmpeg once into a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import default_settings, shared_dir


def _ffmpeg(*args: str) -> None:
    import subprocess

    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def make_clips(names: list[str], side: int, seconds: float, folder: Path) -> dict[str, Path]:
    """The benchmark's clips as H.264 files in ``folder`` (made once, reused by name)."""
    media = shared_dir() / "media"
    enc = ["-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", "-an"]
    out: dict[str, Path] = {}
    for name in names:
        path = folder / f"{name}-{side}-{seconds:g}.mp4"
        out[name] = path
        if path.is_file():
            continue
        scale = f"scale='if(gt(iw,ih),{side},-2)':'if(gt(iw,ih),-2,{side})'"
        if name in ("vtest", "vtest30"):
            ss = "30" if name == "vtest30" else "0"
            _ffmpeg("-ss", ss, "-i", str(media / "vtest.avi"), "-t", f"{seconds}", "-vf", scale, *enc, str(path))
        elif name == "tree":
            _ffmpeg("-i", str(media / "tree.avi"), "-t", f"{seconds}", "-vf", scale, *enc, str(path))
        elif name == "pan":
            # 4:3 window sliding right across the painting at a constant speed.
            vf = f"scale=-2:360,crop=360:270:'t*(iw-360)/{seconds}':45,{scale}"
            _ffmpeg(
                "-loop",
                "1",
                "-framerate",
                "12",
                "-i",
                str(media / "starry_night.jpg"),
                "-t",
                f"{seconds}",
                "-vf",
                vf,
                "-r",
                "12",
                *enc,
                str(path),
            )
        elif name == "zoomin":
            vf = f"scale=800:-2,zoompan=z='1+0.004*on':d={int(seconds * 12)}:s=400x300:fps=12,{scale}"
            _ffmpeg("-i", str(media / "fruits.jpg"), "-vf", vf, "-t", f"{seconds}", *enc, str(path))
        else:
            raise SystemExit(f"unknown clip {name!r}")
    return out


def flicker_rows(out: list[np.ndarray], raw: list[np.ndarray], flows: list) -> np.ndarray:
    """Per step t-1 -> t: (masked mean |out_t - warp(out_t-1)|, the same on the input); as the test does."""
    from dreamvideo.flow import warp

    rows = []
    for t in range(1, len(out)):
        flow_bw, mask = flows[t - 1]
        m = mask[..., None]
        w = float(m.sum()) * 3 + 1e-6
        o, r = out[t].astype(np.float32), raw[t].astype(np.float32)
        rows.append(
            (
                float((np.abs(o - warp(out[t - 1].astype(np.float32), flow_bw)) * m).sum() / w),
                float((np.abs(r - warp(raw[t - 1].astype(np.float32), flow_bw)) * m).sum() / w),
            )
        )
    return np.array(rows)


def join_measures(video: list[np.ndarray], raw: list[np.ndarray], flows: list, b: int, join: int) -> tuple:
    """(largest step into b..b+J over the median of the rest, window flicker over the whole's)."""
    steps = [float(np.abs(y.astype(np.float32) - x.astype(np.float32)).mean()) for x, y in zip(video, video[1:])]
    inside = range(b - 1, b + join)
    rest = float(np.median([s for i, s in enumerate(steps) if i not in inside]))
    rows = flicker_rows(video, raw, flows)
    whole = rows[:, 0].mean() / rows[:, 1].mean()
    lo, hi = max(b - 4, 0), min(b + join + 3, len(steps))
    window = rows[lo:hi, 0].mean() / rows[lo:hi, 1].mean()
    # The input's own steps spike (vtest: 2x every few frames), so the seam's measure is the step
    # over the input's step at the same frame, against its median over the rest.
    rsteps = [float(np.abs(y.astype(np.float32) - x.astype(np.float32)).mean()) for x, y in zip(raw, raw[1:])]
    floor = 0.25 * float(np.median(rsteps))  # a repeated input frame (step ~0) must not divide by ~0
    norm = [s / max(r, floor, 1e-3) for s, r in zip(steps, rsteps)]
    nrest = float(np.median([s for i, s in enumerate(norm) if i not in inside]))
    return max(steps[i] for i in inside) / rest, window / whole, rest, max(norm[i] for i in inside) / nrest


def joined(
    a: list[np.ndarray],
    bseg: list[np.ndarray],
    b_start: int,
    b: int,
    join: int,
    motion: list[float] | None = None,
) -> list[np.ndarray]:
    """The split render's frames: A before b, the cross-fade over b..b+J-1, B after.

    ``motion`` None: a linear fade. Else the input's step into each frame (motion[t] = mean
    |raw_t - raw_t-1|), paced as segments.joined_frames paces it (segments.fade_weights).
    """
    from dreamvideo.segments import cross_fade, fade_weights

    cum = fade_weights([1.0] * (join + 1) if motion is None else [motion[t] for t in range(b, b + join + 1)])
    out = []
    for t in range(len(a)):
        if t < b:
            out.append(a[t])
        elif t < b + join:
            out.append(cross_fade(a[t], bseg[t - b_start], float(cum[t - b])))
        else:
            out.append(bseg[t - b_start])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clips", default="vtest,vtest30,tree,pan,zoomin")
    ap.add_argument("--prerolls", default="1,2.5", help="seconds, comma-separated")
    ap.add_argument("--joins", default="1,2,3,4", help="seconds, comma-separated")
    ap.add_argument("--set", action="append", default=[], help="key=value settings for both chains")
    ap.add_argument("--at", default="", help="boundary frames to try (default: the join window centred)")
    ap.add_argument("--fades", default="linear,motion", help="cross-fade weights to compare")
    ap.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "dreamvideo-bench-joins"))
    args = ap.parse_args()

    from dreamvideo.config import coerce
    from dreamvideo.decode import iter_frames, read_image
    from dreamvideo.flow import FlowEstimator, coherence
    from dreamvideo.probe import probe
    from dreamvideo.render import render_range

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = default_settings(**{k: coerce(k, v) for k, v in (p.split("=", 1) for p in args.set)})
    clips = make_clips(args.clips.split(","), args.side, args.seconds, folder)
    prerolls = [float(x) for x in args.prerolls.split(",")]
    joins = [float(x) for x in args.joins.split(",")]
    print(f"model {settings.dream.model}, side {args.side}, {args.seconds:g} s clips; --set {args.set}")
    est = FlowEstimator("dis-medium")
    t_start = time.perf_counter()
    table = []
    for name, path in clips.items():
        fps = float(probe(path).fps)
        raw = list(iter_frames(path, max_side=settings.dream.max_side))
        flows = [coherence(raw[t], raw[t - 1], est)[:2] for t in range(1, len(raw))]
        n = len(raw)

        def run(start: int, tag: str, name: str = name, path: Path = path) -> list[np.ndarray]:
            work = folder / f"{name}-{tag}-{settings.digest()[:12]}"
            r = render_range(path, work, settings, start=start, stop=None, tag=tag)
            return [read_image(r.frame_path(t)) for t in range(r.start, r.start + r.frames)]

        a = run(0, "whole")
        longest = int(round(max(joins) * fps))
        ats = [int(x) for x in args.at.split(",")] if args.at else [(n - longest) // 2]
        for pre_s, b in ((p, at) for p in prerolls for at in ats):
            pre = int(round(pre_s * fps))
            b = max(b, pre + 1)  # the boundary (default: the join window centred in the clip)
            bstart = b - pre
            bseg = run(bstart, f"from{bstart}")
            seam = float(np.abs(a[b].astype(np.float32) - bseg[b - bstart].astype(np.float32)).mean())
            motion = [0.0] + [
                float(np.abs(y.astype(np.float32) - x.astype(np.float32)).mean()) for x, y in zip(raw, raw[1:])
            ]
            for join_s in joins:
                j = int(round(join_s * fps))
                for fade in args.fades.split(","):
                    split = joined(a, bseg, bstart, b, j, motion if fade == "motion" else None)
                    step, window, rest, rel = join_measures(split, raw, flows, b, j)
                    nstep, nwindow, _, nrel = join_measures(a, raw, flows, b, j)
                    table.append((name, pre_s, join_s, step, window, nstep, nwindow, seam / rest, rel, nrel, fade))
                    print(
                        f"{name:8s} preroll {pre_s:4.1f} s join {join_s:3.1f} s ({j:2d} fr) {fade:6s} at {b:3d}/{n}: "
                        f"step {step:4.2f} rel {rel:4.2f} window {window:4.2f} | "
                        f"unsplit {nstep:4.2f} {nrel:4.2f} {nwindow:4.2f} | "
                        f"seam {seam:5.2f} = {seam / rest:4.1f} median steps",
                        flush=True,
                    )
    print("\nworst over clips (step <= 1.5, window <= 1.2; rel = step over the input's step):")
    for pre_s in prerolls:
        for join_s in joins:
            for fade in args.fades.split(","):
                rows = [r for r in table if r[1] == pre_s and r[2] == join_s and r[10] == fade]
                print(
                    f"  preroll {pre_s:4.1f} s join {join_s:3.1f} s {fade:6s}: "
                    f"step max {max(r[3] for r in rows):4.2f} (unsplit {max(r[5] for r in rows):4.2f}); "
                    f"rel max {max(r[8] for r in rows):4.2f} (unsplit {max(r[9] for r in rows):4.2f}); "
                    f"window max {max(r[4] for r in rows):4.2f} mean {np.mean([r[4] for r in rows]):4.2f}; "
                    f"seam mean {np.mean([r[7] for r in rows]):4.1f} steps"
                )
    print(f"wall {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
