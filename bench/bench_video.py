"""Benchmark video: seconds per frame, coherent chain vs every frame dreamed from scratch.

Run:  python bench/bench_video.py [--frames 16] [--scratch-frames 3] [--size 640x360]
                                  [--warm-steps N] [--warm-octaves N] [--quick] [--pipelined]

The clip is a real one: vtest.avi (pedestrians, static camera), a cut of it centre-cropped to
16:9 and written to a temporary mp4 (bench.common.make_clip), decoded with max_side = the width.
Each frame goes decode -> flow (coherence: both flows + occlusion mask) -> dream (VideoChain.step:
warp, blend, dream, colour match) -> encode (FrameWriter to a temporary mp4), run serially here
so each stage is timed on its own (render_video overlaps decode + flow with the dream in a
producer thread: --pipelined also times the real render_video on the same clip).
Encode wall time is the write() calls plus close(); ffmpeg encodes in a child process, whose CPU
seconds are reported too (on 2 cores it competes with the dream).

Strength is mean abs(out - in) (0..255): warm frames must carry comparable dream, so the coherent
mode's strength (frames after the chain has settled) is printed beside the from-scratch one.
Warm settings can be tuned with --warm-steps / --warm-octaves (bench argument only).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, Timer, default_settings, make_clip, median, print_table, strength  # noqa: E402


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_video(clip: Path, settings, frames: int, max_side: int | None, log=print) -> dict:
    """Serial, stage-timed render of ``frames`` frames of ``clip``; per-frame stage seconds and strengths."""
    from dreamvideo.decode import iter_frames
    from dreamvideo.dream import get_engine
    from dreamvideo.encode import open_writer
    from dreamvideo.flow import FlowEstimator, coherence
    from dreamvideo.chain import VideoChain

    engine = get_engine(settings.dream)
    chain = VideoChain(engine, settings)
    est = FlowEstimator(settings.video.flow)
    per_frame: list[dict] = []
    it = iter_frames(clip, max_side=max_side, max_frames=frames)
    prev = None
    writer = None
    out_dir = Path(tempfile.mkdtemp(prefix="dv-bench-enc-"))
    cpu0 = _child_cpu()
    while True:
        t = Timer()
        with t("decode"):
            raw = next(it, None)
        if raw is None:
            break
        with t("flow"):
            coh = coherence(raw, prev, est) if prev is not None else None
        with t("dream"):
            out8, info = chain.step(len(per_frame), raw, coh)
        with t("encode"):
            if writer is None:
                writer = open_writer(out_dir / "out.mp4", 10, (raw.shape[1], raw.shape[0]),
                                     crf=settings.encode.crf, encoder_preset=settings.encode.encoder_preset)
            writer.write(out8)
        rec = {k: t.total(k) for k in ("decode", "flow", "dream", "encode")}
        rec.update(seeded=info["seeded"], cut=info["cut"], strength=strength(out8, raw))
        per_frame.append(rec)
        log(f"  frame {len(per_frame) - 1}: " + " ".join(f"{k} {rec[k]:.3f}s" for k in ("decode", "flow", "dream", "encode"))
            + f" strength {rec['strength']:.1f}{' warm' if info['seeded'] else ''}")
        prev = raw
    t0 = time.perf_counter()
    if writer is not None:
        writer.close()
    close_s = time.perf_counter() - t0
    enc_cpu = _child_cpu() - cpu0
    if per_frame:
        per_frame[-1]["encode"] += close_s
    for f in per_frame:
        f["total"] = f["decode"] + f["flow"] + f["dream"] + f["encode"]
    first = per_frame[0]
    warm = [f for f in per_frame[1:] if f["seeded"]]
    scratch_later = [f for f in per_frame[1:] if not f["seeded"]]
    later = per_frame[1:]
    settled = later[len(later) // 2:] if later else []
    n = len(per_frame)
    res = {
        "frames": n, "size": f"{raw_shape(per_frame, clip, max_side)}",
        "first_s": first["total"], "first_dream_s": first["dream"],
        "warm_s": median([f["total"] for f in warm]) if warm else float("nan"),
        "later_s": median([f["total"] for f in later]) if later else float("nan"),
        "scratch_later_s": median([f["total"] for f in scratch_later]) if scratch_later else float("nan"),
        "mean_s": float(np.mean([f["total"] for f in per_frame])),
        "strength_first": first["strength"],
        "strength_later": float(np.mean([f["strength"] for f in later])) if later else float("nan"),
        "strength_settled": float(np.mean([f["strength"] for f in settled])) if settled else float("nan"),
        "encode_cpu_s_per_frame": enc_cpu / max(n, 1),
        "cuts": sum(f["cut"] for f in per_frame),
    }
    for stage in ("decode", "flow", "dream", "encode"):
        res[f"{stage}_s"] = float(np.mean([f[stage] for f in later])) if later else first[stage]
    tot = sum(res[f"{s}_s"] for s in ("decode", "flow", "dream", "encode"))
    for stage in ("decode", "flow", "dream", "encode"):
        res[f"{stage}_share"] = res[f"{stage}_s"] / tot if tot else float("nan")
    res["per_frame"] = per_frame
    return res


def raw_shape(per_frame, clip, max_side) -> str:
    from dreamvideo.decode import iter_frames

    f = next(iter(iter_frames(clip, max_side=max_side, max_frames=1)))
    return f"{f.shape[1]}x{f.shape[0]}"


def run_pipelined(clip: Path, settings, frames: int) -> float:
    """Seconds per frame of the real render_video (decode + flow overlapped in its producer thread)."""
    from dreamvideo.render import render_video

    out = Path(tempfile.mkdtemp(prefix="dv-bench-render-")) / "out.mp4"
    s = settings.replace(max_frames=frames, audio=False)
    t = time.perf_counter()
    render_video(clip, out, s, resume=False)
    return (time.perf_counter() - t) / frames


def run(size=(640, 360), frames: int = 16, scratch_frames: int = 3, warm_steps: int | None = None,
        warm_octaves: int | None = None, pipelined: bool = False, log=print) -> tuple[list[Row], dict]:
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    w, h = size
    clip = make_clip(w, h, max(frames, scratch_frames))
    over = {}
    if warm_steps is not None:
        over["warm_steps"] = warm_steps
    if warm_octaves is not None:
        over["warm_octaves"] = warm_octaves
    coh_settings = default_settings(max_side=w, **over)
    scratch_settings = default_settings(max_side=w, coherent=False)
    v = coh_settings.video
    from bench.common import vtest_frame
    from dreamvideo.dream import DreamParams, get_engine

    t = time.perf_counter()
    engine = get_engine(coh_settings.dream)
    engine.dream(vtest_frame(160, 90), DreamParams.from_config(coh_settings.dream, steps=1, octaves=1))
    startup = time.perf_counter() - t  # model load + the one trace: not a frame's cost
    log(f"coherent ({frames} frames, warm {v.warm_steps} steps x {v.warm_octaves} octaves, flow {v.flow}):")
    coh = run_video(clip, coh_settings, frames, w, log)
    log(f"from scratch ({scratch_frames} frames, {coh_settings.dream.steps} steps x {coh_settings.dream.octaves} octaves):")
    scr = run_video(clip, scratch_settings, scratch_frames, w, log)
    scratch_s = scr["mean_s"]
    res = {"coherent": coh, "scratch": scr, "warm_over_scratch": coh["warm_s"] / scratch_s,
           "warm_steps": v.warm_steps, "warm_octaves": v.warm_octaves}
    res["startup_s"] = startup
    rows = [
        Row("startup (model load + trace, once)", f"{startup:.1f}", "before the first frame; kept across frames"),
        Row(f"coherent first frame s ({w}x{h})", f"{coh['first_s']:.2f}", f"strength {coh['strength_first']:.1f}"),
        Row("coherent warm frame s (median)", f"{coh['warm_s']:.2f}",
            f"{v.warm_steps} steps x {v.warm_octaves} oct; strength {coh['strength_later']:.1f} (settled {coh['strength_settled']:.1f})"),
        Row("from-scratch frame s (mean)", f"{scratch_s:.2f}", f"strength {np.mean([f['strength'] for f in scr['per_frame']]):.1f}"),
        Row("warm / from-scratch", f"{res['warm_over_scratch']:.3f}", "target <= 0.333"),
        Row("coherent mean s/frame over the clip", f"{coh['mean_s']:.2f}", f"{coh['frames']} frames, first included"),
        Row("flow share of a warm frame", f"{coh['flow_share'] * 100:.1f}%", f"{coh['flow_s'] * 1000:.0f} ms ({v.flow}, both directions + mask)"),
        Row("stage shares, warm frames", " / ".join(f"{coh[s + '_share'] * 100:.0f}%" for s in ("decode", "flow", "dream", "encode")),
            "decode / flow / dream / encode (serial)"),
        Row("encode CPU s/frame (ffmpeg child)", f"{coh['encode_cpu_s_per_frame']:.3f}", "runs beside the dream, not in its wall"),
    ]
    if pipelined:
        pp = run_pipelined(clip, coh_settings, frames)
        res["pipelined_s_per_frame"] = pp
        rows.append(Row("render_video s/frame (pipelined)", f"{pp:.2f}", f"vs serial {coh['mean_s']:.2f}"))
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=16, help="frames of the coherent run (first + warm)")
    ap.add_argument("--scratch-frames", type=int, default=3, help="frames of the from-scratch run")
    ap.add_argument("--warm-steps", type=int, default=None, help="override video.warm_steps for this bench")
    ap.add_argument("--warm-octaves", type=int, default=None, help="override video.warm_octaves for this bench")
    ap.add_argument("--pipelined", action="store_true", help="also time render_video on the same clip")
    ap.add_argument("--quick", action="store_true", help="8 coherent frames, 2 from scratch")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    frames, scratch = (8, 2) if a.quick else (a.frames, a.scratch_frames)
    rows, _ = run((w, h), frames, scratch, a.warm_steps, a.warm_octaves, a.pipelined)
    print_table(rows, f"video at {w}x{h}: coherent vs from scratch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
