"""A 640x360 first frame now against "today" (issue 17): the same dream, each side in its own fresh processes.

Run:  python bench/bench_first_frame.py [--models efficientnet_lite0,inception_v3] [--pairs 3] [--dreams 2]
                                        [--size 640x360]

"today" is this checkout with the rules the issue measured: 16 px of reflect padding at every octave
(dream.edge_pad as it was), no grid (dream.fit_grid as it was) and the batch norms left in the model
(model.fold_batch_norms off), and TensorFlow's graph optimiser on for every model (dream.graph_optimizer as it
was). "now" is the model's own rules. Each process builds its engine, traces it
on a small frame, then dreams the vtest frame (bench.common.vtest_frame) from scratch at the default
preset (4 octaves x 24 steps, seed 0) ``--dreams`` times and reports the best; the sides alternate
(A B B A ...) over ``--pairs`` pairs, and the speed-up is the median of the pairs' own ratios, since
processes on these machines differ by up to 15% whatever they run. The edge quality of the same
dreams is bench/bench_edges.py's (edge / interior of the outer 8 px, and the weakest side).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, inception_weights, print_table, run_python

CHILD = r"""
import contextlib, json, sys, time
from bench.common import default_settings, vtest_frame
from bench.bench_edges import _no_grid, _today, band_ratio, weakest_side
from dreamvideo import dream, model
model_name, side, dreams, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if side == "today":
    dream.edge_pad, dream.fit_grid = _today, _no_grid
    model.fold_batch_norms = lambda m, keep=(): 0
    dream.graph_optimizer = lambda spec, gpu: contextlib.nullcontext()
weights = {} if model_name == "inception_v3" else {"weights": None}
d = default_settings(model=model_name, **weights).dream
engine = dream.get_engine(d)
w, h = (int(v) for v in size.split("x"))
img = vtest_frame(w, h)
engine.dream(vtest_frame(160, 90), dream.DreamParams.from_config(d, steps=1, octaves=1))  # the one trace
p = dream.DreamParams.from_config(d)
best = float("inf")
for _ in range(dreams):
    t = time.perf_counter()
    out = engine.dream(img, p, seed=0)
    best = min(best, time.perf_counter() - t)
print(json.dumps({"s": best, "edge": band_ratio(out, img), "weakest": weakest_side(out, img)}), flush=True)
"""


def run(models: list[str], pairs: int, dreams: int, size: str, log=print) -> list[Row]:
    """Alternating fresh processes of both sides per model; rows of seconds, edges and the median ratio."""
    rows: list[Row] = []
    for m in models:
        got: dict[str, list[dict]] = {"today": [], "now": []}
        for i in range(pairs):
            for side in ("today", "now") if i % 2 == 0 else ("now", "today"):
                out = run_python(["-c", CHILD, m, side, str(dreams), size]).strip().splitlines()[-1]
                got[side].append(json.loads(out))
                log(f"  {m} pair {i + 1} {side}: {got[side][-1]['s']:.2f} s")
        ratios = [a["s"] / b["s"] for a, b in zip(got["today"], got["now"])]
        for side in ("today", "now"):
            r = got[side][-1]
            rows.append(
                Row(
                    f"{m} {side}: s per first frame",
                    " / ".join(f"{g['s']:.2f}" for g in got[side]),
                    f"best of {dreams} per process; edge/interior {r['edge']:.3f}, weakest side {r['weakest']:.3f}",
                )
            )
        rows.append(
            Row(
                f"{m}: today / now",
                f"{statistics.median(ratios):.2f}x",
                "median of the pairs' ratios (" + ", ".join(f"{r:.2f}" for r in ratios) + f"); {size}",
            )
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated (default: both, InceptionV3 where its weights are)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dreams", type=int, default=2, help="first frames per process (the best counts)")
    ap.add_argument("--size", default="640x360")
    a = ap.parse_args(argv)
    both = ["efficientnet_lite0", *(["inception_v3"] if inception_weights() else [])]
    models = a.models.split(",") if a.models else both
    rows = run(models, a.pairs, a.dreams, a.size, log=lambda s: print(s, file=sys.stderr, flush=True))
    print_table(rows, f"first frame, now vs today ({a.size})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
