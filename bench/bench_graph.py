"""Which max-pool gradient kernel a process gets, with and without TensorFlow's graph optimiser (issue 17).

Run:  python bench/bench_graph.py [--processes 6] [--precision float32] [--size 640x360] [--model inception_v3]

oneDNN's layout pass gives MaxPoolGrad its multi-threaded kernel only where it visits the forward max
pool first; after Grappler that order varies from process to process, and the others run Eigen's
MaxPoolGrad, which shards over the batch only (one thread for a batch of one). ``ModelSpec.graph_optimizer``
= False runs the ascent without Grappler (``dream.graph_optimizer``). Each fresh process here builds the
engine, traces it, dreams the vtest frame once from scratch at the default preset (4 octaves x 24 steps,
seed 0), then profiles one small step and reports which MaxPoolGrad ran. The sides alternate (A B B A ...);
the speed-up is the ratio of the sides' medians, and per kernel the mean time says what the kernel costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, print_table, run_python

CHILD = r"""
import contextlib, json, sys, time
from bench.bench_speed import op_profile
from bench.common import default_settings, vtest_frame
from dreamvideo import dream
model_name, side, precision, size = sys.argv[1:5]
if side == "grappler":  # the optimiser on, as every model had it before
    dream.graph_optimizer = lambda spec, gpu: contextlib.nullcontext()
d = default_settings(model=model_name, precision=precision).dream
engine = dream.get_engine(d)
engine.dream(vtest_frame(160, 90), dream.DreamParams.from_config(d, steps=1, octaves=1))  # the one trace
w, h = (int(v) for v in size.split("x"))
t = time.perf_counter()
engine.dream(vtest_frame(w, h), dream.DreamParams.from_config(d), seed=0)
s = time.perf_counter() - t
small = vtest_frame(320, 180)
_, ops = op_profile(lambda: engine.dream(small, dream.DreamParams.from_config(d, steps=1, octaves=1)))
print(json.dumps({"s": s, "eigen": ops.get("MaxPoolGrad", 0.0) > 0}), flush=True)
"""

SIDES = ("grappler", "model")  # the optimiser on (before), the model's own rule (now)


def run(model: str, processes: int, precision: str, size: str, log=print) -> list[Row]:
    """``processes`` fresh processes per side, alternated; rows of times, kernels and the median ratio."""
    got: dict[str, list[dict]] = {s: [] for s in SIDES}
    for i in range(processes):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            out = run_python(["-c", CHILD, model, side, precision, size]).strip().splitlines()[-1]
            got[side].append(json.loads(out))
            r = got[side][-1]
            log(f"  {side} {i + 1}: {r['s']:.2f} s, MaxPoolGrad {'Eigen' if r['eigen'] else 'oneDNN'}")
    rows: list[Row] = []
    for side in SIDES:
        rs = got[side]
        slow = [r["s"] for r in rs if r["eigen"]]
        fast = [r["s"] for r in rs if not r["eigen"]]
        rows.append(
            Row(
                f"{side}: s per first frame",
                " / ".join(f"{r['s']:.2f}{'*' if r['eigen'] else ''}" for r in rs),
                f"* = Eigen MaxPoolGrad ({len(slow)} of {len(rs)}); mean Eigen "
                + (f"{statistics.mean(slow):.2f}" if slow else "-")
                + ", oneDNN "
                + (f"{statistics.mean(fast):.2f}" if fast else "-"),
            )
        )
    before = statistics.median(r["s"] for r in got["grappler"])
    now = statistics.median(r["s"] for r in got["model"])
    rows.append(Row("optimiser on / model's rule", f"{before / now:.2f}x", f"medians; {model} {precision} {size}"))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="inception_v3")
    ap.add_argument("--processes", type=int, default=6, help="fresh processes per side")
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--size", default="640x360")
    a = ap.parse_args(argv)
    rows = run(a.model, a.processes, a.precision, a.size, log=lambda s: print(s, file=sys.stderr, flush=True))
    print_table(rows, f"max-pool gradient kernels, optimiser on vs the model's rule ({a.model}, {a.size})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
