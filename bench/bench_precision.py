"""The precision setting: seconds per dream and activation gain, bfloat16 against float32, and auto's choice.

Run:  python bench/bench_precision.py [--size 640x360] [--steps 6] [--octaves 2] [--repeats 3] [--models ...]

For each model, two engines from ``get_engine`` on the same settings except ``precision`` dream the
same frame (vtest.avi frame 100) with the same seed, alternately, best of ``--repeats``:
  s/dream   one whole dream (``--octaves`` x ``--steps``), and float32 / bfloat16
  gain      activation gain (the dream loss after minus before), both outputs judged by the
            float32 model, and bfloat16's over float32's (1.00 = the same strength of dream)
  strength  mean |out - in| (0..255)
and what ``precision = "auto"`` picks here, with its probe's ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_render import model_flat
from bench.common import Row, default_settings, print_table, strength, vtest_frame


def run(models: list[str], size=(640, 360), steps: int = 6, octaves: int = 2, repeats: int = 3,
        log=print) -> tuple[list[Row], dict]:
    from dreamvideo.dream import DreamParams, get_engine

    rows: list[Row] = []
    res: dict = {}
    img = vtest_frame(*size).astype(np.float32)
    for name in models:
        flat = model_flat(name)
        if flat is None:
            continue
        engines = {p: get_engine(default_settings(**flat, precision=p).dream) for p in ("float32", "bfloat16")}
        d = default_settings(**flat).dream
        params = DreamParams.from_config(d, steps=steps, octaves=octaves)
        for e in engines.values():
            e.dream(img, DreamParams.from_config(d, steps=1, octaves=1))  # trace
        best = {p: float("inf") for p in engines}
        outs: dict = {}
        for i in range(repeats):
            for p in (list(engines) if i % 2 == 0 else list(engines)[::-1]):
                t = time.perf_counter()
                outs[p] = engines[p].dream(img, params, seed=0)
                best[p] = min(best[p], time.perf_counter() - t)
                log(f"  {name} {p}: {time.perf_counter() - t:.2f} s")
        judge = engines["float32"]
        a0 = judge.activation(img)
        gain = {p: judge.activation(o) - a0 for p, o in outs.items()}
        st = {p: strength(o, img) for p, o in outs.items()}
        t = time.perf_counter()
        auto = get_engine(default_settings(**flat, precision="auto").dream)
        note = next((n for n in auto.loaded.notes if n.startswith("precision auto")), "")
        res[name] = {"s": best, "gain": gain, "strength": st, "auto": auto.precision}
        rows += [
            Row(f"{name} s/dream f32 / bf16", f"{best['float32']:.2f} / {best['bfloat16']:.2f}",
                f"{best['float32'] / best['bfloat16']:.2f}x; {size[0]}x{size[1]}, {octaves} oct x {steps} steps, best of {repeats}"),
            Row(f"{name} activation gain f32 / bf16", f"{gain['float32']:.4f} / {gain['bfloat16']:.4f}",
                f"bf16/f32 {gain['bfloat16'] / gain['float32']:.3f} (float32 model as judge); strength "
                f"{st['float32']:.1f} / {st['bfloat16']:.1f}; mean |f32 - bf16| {np.abs(outs['float32'] - outs['bfloat16']).mean():.1f}"),
            Row(f"{name} precision auto", auto.precision, f"{note}; probe {time.perf_counter() - t:.2f} s"),
        ]
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="inception_v3,efficientnet_lite0")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    w, h = (int(v) for v in a.size.lower().split("x"))
    log = lambda m: print(m, file=sys.stderr, flush=True)
    rows, _ = run(a.models.split(","), (w, h), a.steps, a.octaves, a.repeats, log=log)
    print_table(rows, "precision: bfloat16 against float32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
