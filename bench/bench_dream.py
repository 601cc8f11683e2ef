"""Benchmark the dream step: the engine against a classic eager loop, at 640x360.

Run:  python bench/bench_dream.py [--steps 24] [--step-repeats 3] [--size 640x360] [--quick]

Prints, for the engine (fused tf.function over an octave, tiled gradients) and for the classic
eager loop (bench/classic.py: GradientTape per step, no tf.function; same model, layers, octaves,
steps and step size), measured in the same run and interleaved so shared-machine load hits both:
  s/step   best-of-N seconds of one step at the full size (one octave call of 4 steps / 4; the least
           disturbed repeat on a shared machine)
  s/image  seconds for one whole image (all octaves, all steps)
  strength mean |out - in| (0..255) of that image, to show the two do comparable work
and the ratio classic / engine. The input is a real frame (vtest.avi, cropped to 16:9).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, default_settings, median, print_table, strength, timed, vtest_frame  # noqa: E402


def engine_step_seconds(engine, image, tile: int, steps: int = 4, repeats: int = 3, jitter: int = 16) -> float:
    """Median seconds per step of the engine at the image's full size (one octave, ``steps`` steps)."""
    from dreamvideo.dream import DreamParams

    p = DreamParams(steps=steps, step_size=0.03, octaves=1, octave_scale=1.4, jitter=jitter, tile_size=tile)
    engine.dream(image, DreamParams(**{**p.__dict__, "steps": 1}))  # warm-up (trace once per engine)
    return median([timed(lambda: engine.dream(image, p))[0] / steps for _ in range(repeats)])


def classic_step_seconds(classic, image, steps: int = 4, repeats: int = 3) -> float:
    import tensorflow as tf

    img = tf.constant(image.astype("float32") / 127.5 - 1.0)
    classic.step(img, 0.03)  # warm-up

    def run():
        x = img
        for _ in range(steps):
            x = classic.step(x, 0.03)
        x.numpy()

    return median([timed(run)[0] / steps for _ in range(repeats)])


def run(
    size=(640, 360), steps: int | None = None, step_repeats: int = 3, step_steps: int = 4, log=print
) -> tuple[list[Row], dict]:
    from bench.classic import ClassicDream
    from dreamvideo.dream import DreamParams, get_engine
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    s = default_settings()
    d = s.dream
    steps = d.steps if steps is None else steps
    engine = get_engine(d)
    classic = ClassicDream(engine)
    w, h = size
    image = vtest_frame(w, h).astype("float32")
    res: dict = {
        "model": engine.name,
        "layers": list(engine.layers),
        "size": f"{w}x{h}",
        "steps": steps,
        "octaves": d.octaves,
        "tile_size": d.tile_size,
    }
    e_step, c_step = [], []
    for _ in range(step_repeats):  # interleaved
        e_step.append(engine_step_seconds(engine, image, d.tile_size, step_steps, 1, d.jitter))
        c_step.append(classic_step_seconds(classic, image, step_steps, 1))
    res["engine_s_per_step"], res["classic_s_per_step"] = min(e_step), min(c_step)
    params = DreamParams.from_config(d, steps=steps)
    te, out_e = timed(lambda: engine.dream(image, params, seed=0))
    tc, out_c = timed(lambda: classic.dream(image, steps, d.step_size, d.octaves, d.octave_scale))
    res.update(
        engine_s_per_image=te,
        classic_s_per_image=tc,
        engine_strength=strength(out_e, image),
        classic_strength=strength(out_c, image),
    )
    rows = [
        Row(f"engine s/step {w}x{h}", f"{res['engine_s_per_step']:.3f}", f"best of {step_repeats}, tile {d.tile_size}"),
        Row(f"classic s/step {w}x{h}", f"{res['classic_s_per_step']:.3f}", "eager GradientTape, untiled"),
        Row("ratio classic/engine (step)", f"{res['classic_s_per_step'] / res['engine_s_per_step']:.2f}x", ""),
        Row(f"engine s/image ({d.octaves} oct x {steps} steps)", f"{te:.2f}", f"strength {res['engine_strength']:.1f}"),
        Row(
            f"classic s/image ({d.octaves} oct x {steps} steps)", f"{tc:.2f}", f"strength {res['classic_strength']:.1f}"
        ),
        Row("ratio classic/engine (image)", f"{tc / te:.2f}x", ""),
    ]
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    ap.add_argument(
        "--steps", type=int, default=None, help="steps per octave for the per-image time (default: the preset's)"
    )
    ap.add_argument("--step-repeats", type=int, default=3, help="interleaved repeats of the per-step timing")
    ap.add_argument("--quick", action="store_true", help="6 steps per octave for the per-image time, 2 repeats")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    steps, reps = (6, 2) if a.quick else (a.steps, a.step_repeats)
    rows, _ = run((w, h), steps, reps)
    print_table(rows, "dream step: engine vs classic eager loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
