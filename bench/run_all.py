"""The benchmark suite in one command: ``python -m bench`` (or ``python bench/run_all.py``).

    python -m bench            # whole renders (bench/bench_render.py): a coherent render_video at the
                               # defaults against the classic eager loop at equal settled strength,
                               # per model, at 640x360, 10 frames (a few minutes on 2 quiet cores)
    python -m bench --full     # the same at 640x360 and 1280x720 over 20 frames, then the engine
                               # suite below (about 30 minutes here)
    python -m bench --suite    # the engine suite alone; --quick: fewer frames and steps (scaled back)
    python -m bench --json out.json   # also write every number measured

The engine suite, measured in one run (the machine is shared: ratios are measured side by side):
  * seconds per video frame at 640x360 and 1280x720 with the default preset (model: InceptionV3
    with the shared weights, else EfficientNet-Lite0 with a message), first frame and warm frames;
  * the classic-style baseline (bench/classic.py: eager GradientTape loop, every frame from
    scratch, same octaves and steps) at both sizes, and the ratio;
  * the dream step's achieved FLOP rate (bench/flops.py documents the counting) against this
    machine's float32 limit (best of a large numpy and a large TensorFlow matmul, same run);
  * peak RSS and seconds of one 3840x2160 frame, in a fresh process (bench/bench_4k.py);
  * the shares of decode, flow, dream and encode in a frame's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    Row,
    default_settings,
    machine,
    make_clip,
    model_settings,
    print_table,
    run_python,
    strength,
    vtest_frame,
)

GiB = 2**30


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="dreamvideo benchmark suite")
    ap.add_argument("--full", action="store_true", help="whole renders at 640x360 and 1280x720, then the engine suite")
    ap.add_argument("--suite", action="store_true", help="the engine suite only")
    ap.add_argument("--quick", action="store_true", help="engine suite: fewer frames and steps (about 4 minutes)")
    ap.add_argument("--json", type=Path, default=None, help="write all measurements to this JSON file")
    ap.add_argument("--no-4k", action="store_true", help="skip the 3840x2160 frame")
    ap.add_argument("--sizes", default=None, help="whole renders at these sizes only, e.g. 1280x720 (no suite after)")
    ap.add_argument("--models", default="efficientnet_lite0,inception_v3", help="whole renders of these models")
    ap.add_argument("--frames", type=int, default=None, help="frames of each coherent render (default 10; --full 20)")
    a = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731  progress on stderr, table on stdout
    if not a.suite:
        from bench.bench_render import run as run_renders
        from dreamvideo.model import import_tensorflow

        import_tensorflow()
        t = time.perf_counter()
        sizes = [(640, 360), (1280, 720)] if a.full else [(640, 360)]
        if a.sizes:
            sizes = [tuple(int(x) for x in wh.split("x")) for wh in a.sizes.split(",")]
        rows, res = run_renders(
            a.models.split(","),
            sizes,
            frames=a.frames or (20 if a.full else 10),
            classic_frames=2 if a.full else 1,
            log=log,
        )
        rows.append(Row("wall time", f"{(time.perf_counter() - t) / 60:.1f} min", "full" if a.full else "default"))
        m = machine()
        print_table(
            rows,
            f"dreamvideo whole renders ({'full' if a.full else 'default'}) on {m['cores']} cores {m['cpu']}, "
            f"TF {m['tensorflow']}, {m['date']}, load avg {m.get('load_avg', '?')}",
        )
        if a.json:
            a.json.write_text(json.dumps({"machine": m, "renders": res}, indent=1, default=str))
        if not a.full or a.sizes:
            return 0
        a.json = a.json.with_suffix(".suite.json") if a.json else None
    return suite(a, log)


def suite(a: argparse.Namespace, log) -> int:
    """The engine suite (the table below the whole renders in bench/RESULTS.md)."""
    t_suite = time.perf_counter()

    from bench.bench_video import run_video
    from bench.classic import ClassicDream
    from bench.flops import matmul_limit, measure_step_rate
    from dreamvideo.dream import DreamParams, get_engine
    from dreamvideo.model import import_tensorflow

    info = machine()
    model_settings(log)  # says so when falling back
    import_tensorflow()
    quick = a.quick
    steps = 6 if quick else None  # None = the preset's
    over = {} if steps is None else {"steps": steps}
    results: dict = {"machine": info, "quick": quick}
    rows: list[Row] = []

    base = default_settings(**over)
    preset_steps = default_settings().dream.steps
    d, v = base.dream, base.video
    t = time.perf_counter()
    engine = get_engine(d)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    engine.dream(vtest_frame(160, 90), DreamParams.from_config(d, steps=1, octaves=1))  # the one trace
    trace_s = time.perf_counter() - t
    rows.append(
        Row(
            "model / layers",
            f"{engine.name} {'+'.join(engine.layers)}",
            f"{d.octaves} octaves x {preset_steps} steps, tile {d.tile_size}; warm {v.warm_steps} steps x "
            f"{v.warm_octaves} oct"
            + ("" if steps is None else f" (quick: first frames run {steps} steps/oct, scaled)"),
        )
    )
    rows.append(
        Row("startup: model load + trace (once)", f"{load_s:.1f} + {trace_s:.1f} s", "kept across frames (get_engine)")
    )

    # --- video, engine ----------------------------------------------------------------------------
    sizes = [(640, 360), (1280, 720)]
    frames = {(640, 360): 4 if quick else 8, (1280, 720): 3 if quick else 5}
    classic = ClassicDream(engine)
    for w, h in sizes:
        n = frames[(w, h)]
        clip = make_clip(w, h, n)
        s = default_settings(max_side=w, **over)
        log(f"video {w}x{h}: {n} frames, coherent, default preset")
        r = run_video(clip, s, n, w, log=log)
        results[f"video_{w}x{h}"] = r
        # classic: every frame from scratch, eager; same octaves and steps
        raws = [f for f in __import__("bench.common", fromlist=["read_clip"]).read_clip(clip, w, 2 if not quick else 1)]
        if (w, h) == (1280, 720) and not quick:
            raws = raws[:1]
        log(f"classic {w}x{h}: {len(raws)} frame(s) from scratch, eager")
        c_times, c_str = [], []
        for raw in raws:
            t = time.perf_counter()
            out = classic.dream(raw, d.steps, d.step_size, d.octaves, d.octave_scale)
            c_times.append(time.perf_counter() - t)
            c_str.append(strength(out, raw))
            log(f"  classic frame: {c_times[-1]:.2f}s strength {c_str[-1]:.1f}")
        c_s = float(np.mean(c_times))
        results[f"classic_{w}x{h}"] = {"s_per_frame": c_times, "strength": c_str}
        # quick mode dreams first frames with fewer steps: the step part is linear in steps (the
        # rest is < 2% of a frame), so scale it to the preset's steps and say so
        k = 1.0 if steps is None else preset_steps / steps
        first = r["first_s"] + (k - 1.0) * r["first_dream_s"]
        c_full = c_s * k
        est = "" if steps is None else " (est.)"
        meas = "" if steps is None else f"; measured {r['first_s']:.2f} s at {steps} steps/oct, x{k:g}"
        cmeas = "" if steps is None else f"; measured {c_s:.2f} s at {steps} steps/oct, x{k:g}"
        r["first_s_preset"], results[f"classic_{w}x{h}"]["s_per_frame_preset"] = first, c_full
        rows += [
            Row(f"{w}x{h} engine first frame s", f"{first:.2f}{est}", f"{d.octaves} oct x {preset_steps} steps{meas}"),
            Row(
                f"{w}x{h} engine warm frame s",
                f"{r['warm_s']:.2f}",
                f"median of {n - 1}; {v.warm_steps} steps x {v.warm_octaves} oct; warm/first {r['warm_s'] / first:.2f}",
            ),
            Row(
                f"{w}x{h} classic s/frame (every frame)",
                f"{c_full:.2f}{est}",
                f"eager, from scratch, {len(c_times)} frame(s){cmeas}",
            ),
            Row(
                f"{w}x{h} classic / engine",
                f"{c_full / first:.2f}x first, {c_full / r['warm_s']:.1f}x warm",
                f"10-frame clip: {10 * c_full / (first + 9 * r['warm_s']):.1f}x",
            ),
            Row(
                f"{w}x{h} strength first / warm / classic",
                f"{r['strength_first']:.1f} / {r['strength_later']:.1f} / {np.mean(c_str):.1f}",
                "mean abs(out - in), 0..255" + ("" if steps is None else f" (first frames at {steps} steps/oct)"),
            ),
            Row(
                f"{w}x{h} shares, warm frame",
                " / ".join(f"{r[k + '_share'] * 100:.1f}%" for k in ("decode", "flow", "dream", "encode")),
                "decode / flow / dream / encode (serial; ffmpeg CPU "
                f"{r['encode_cpu_s_per_frame'] * 1000:.0f} ms/frame in a child process)",
            ),
        ]
        f0 = r["per_frame"][0]
        tot = f0["total"]
        rows.append(
            Row(
                f"{w}x{h} shares, first frame",
                " / ".join(f"{f0[q] / tot * 100:.1f}%" for q in ("decode", "flow", "dream", "encode")),
                "decode / flow / dream / encode",
            )
        )

    # --- FLOP rate ---------------------------------------------------------------------------------
    log("FLOP rate: dream step at 640x360 vs the matmul limit")
    img = vtest_frame(640, 360).astype(np.float32)
    fr = measure_step_rate(engine, img, d.tile_size, steps=4, repeats=2 if quick else 3)
    lim = matmul_limit(4096, repeats=2 if quick else 3)
    results["flops"] = {**fr, **lim}
    rows += [
        Row(
            "dream step FLOPs, 640x360",
            f"{fr['step_gflop']:.1f} GFLOP",
            f"{fr['tiles']} tiles of {fr['tile_shape']} (reflect pad {fr['pad']} px); forward "
            f"{fr['forward_gflop']:.1f} + dX backward {fr['forward_gflop']:.1f} (no dW)",
        ),
        Row(
            "dream step s, 640x360",
            f"{fr['step_s']:.3f}",
            f"forward alone {fr['forward_s']:.3f} s (compiled, same tiles)",
        ),
        Row(
            "achieved FLOP rate (step)",
            f"{fr['step_gflops']:.0f} GFLOP/s",
            f"forward {fr['forward_gflops']:.0f}, backward {fr['backward_gflops']:.0f} GFLOP/s",
        ),
        Row(
            "float32 limit (matmul 4096^2)",
            f"{lim['limit_gflops']:.0f} GFLOP/s",
            f"numpy {lim['numpy_gflops']:.0f}, TensorFlow {lim['tf_gflops']:.0f}",
        ),
        Row(
            "step rate / limit",
            f"{fr['step_gflops'] / lim['limit_gflops'] * 100:.0f}%",
            f"forward {fr['forward_gflops'] / lim['limit_gflops'] * 100:.0f}%, backward "
            f"{fr['backward_gflops'] / lim['limit_gflops'] * 100:.0f}%",
        ),
        Row(
            "step rate / limit, CPU-time based",
            f"{fr['step_gflops_cpu'] / lim['limit_gflops_cpu'] * 100:.0f}%",
            f"step {fr['step_gflops_cpu']:.0f} vs matmul {lim['limit_gflops_cpu']:.0f} GFLOP/s per {fr['cores']} "
            "cores of CPU time (less sensitive to others' load)",
        ),
    ]

    # --- 4K ----------------------------------------------------------------------------------------
    if not a.no_4k:
        log("4K: one 3840x2160 frame in a fresh process")
        k_steps = 1 if quick else 2
        out = run_python(["bench/bench_4k.py", "--json", "--steps", str(k_steps)])
        k = json.loads(out.strip().splitlines()[-1])
        results["4k_first"] = k
        rows.append(
            Row(
                "3840x2160 peak RSS",
                f"{k['peak_rss_bytes'] / GiB:.2f} GiB",
                f"target <= 4 GiB; {k['rss_after_load_bytes'] / GiB:.2f} GiB after model load; tile {k['tile_size']}",
            )
        )
        rows.append(
            Row(
                "3840x2160 first frame s",
                f"{k['extrapolated_first_frame_s']:.0f} (est.)",
                f"measured {k['seconds']:.1f} s at {k['steps']} steps x {k['octaves']} oct, "
                f"x{preset_steps // k['steps']} to {preset_steps} steps",
            )
        )
        if not quick:
            out = run_python(["bench/bench_4k.py", "--json", "--warm"])
            kw = json.loads(out.strip().splitlines()[-1])
            results["4k_warm"] = kw
            rows.append(
                Row(
                    "3840x2160 warm frame s",
                    f"{kw['seconds']:.1f}",
                    f"{kw['steps']} steps x {kw['octaves']} oct; peak RSS {kw['peak_rss_bytes'] / GiB:.2f} GiB",
                )
            )

    total = time.perf_counter() - t_suite
    rows.append(Row("suite wall time", f"{total / 60:.1f} min", "quick" if quick else "full"))
    m = info
    title = (
        f"dreamvideo bench ({'quick' if quick else 'full'}) on {m['cores']} cores {m['cpu']}, "
        f"TF {m['tensorflow']}, Keras {m['keras']}, numpy {m['numpy']}, {m['date']}, load avg {m.get('load_avg', '?')}"
    )
    print_table(rows, title)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
