"""Edge padding: how much each rule costs and whether the frame's edges still dream like its interior.

Run:  python bench/bench_edges.py [--size 640] [--steps N] [--repeats 2] [--rules today,none,...]

For each padding rule (the reflect padding added around every octave before its gradients, see
dream.edge_pad) it dreams the same images with the same engine, seed and settings (the default
preset and model; the pad is a run-time input, so no rule retraces) and prints:
  edge / interior  mean |out - in| in the outer 8 px band over that in the interior (>= 48 px
                   from every edge): 1.0 = the edges dream as strongly as the middle
  pixels           pixels the network sees per dream (all octaves, padded) over the unpadded ones
  s/dream          best-of-repeats seconds of one whole dream, rules interleaved, and the speed-up
                   against "today" (the rule this bench was written against: 16 px at every octave)
Images: vtest.avi frame 100 (16:9) and butterfly.jpg (the image EDGE_PAD was first measured on),
both resized to ``--size`` px wide.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, default_settings, print_table, shared_dir, vtest_frame

Rule = Callable[[int, int, int, float], int]


def _today(h: int, w: int, jitter: int, factor: float) -> int:
    return min(max(jitter, 16), min(h, w) - 1)


def _const(p: int) -> Rule:
    return lambda h, w, jitter, factor: min(p, min(h, w) - 1)


def _scaled(h: int, w: int, jitter: int, factor: float) -> int:
    return min(math.ceil(max(jitter, 16) / factor), min(h, w) - 1)


def _full_only(h: int, w: int, jitter: int, factor: float) -> int:
    return min(max(jitter, 16), min(h, w) - 1) if factor <= 1.0 else 0


RULES: dict[str, Rule] = {"today": _today, "none": _const(0), "4": _const(4), "8": _const(8),
                          "scaled": _scaled, "full-only": _full_only}


def band_ratio(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> float:
    """Mean |out - in| of the outer ``band`` px over that of the interior ``inner`` px from the edges."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    mask = np.zeros(d.shape, bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return float(d[mask].mean() / d[inner:-inner, inner:-inner].mean())


def images(width: int) -> dict[str, np.ndarray]:
    import cv2

    out = {"vtest": vtest_frame(width, width * 9 // 16)}
    bf = shared_dir() / "media" / "butterfly.jpg"
    if bf.is_file():
        rgb = cv2.cvtColor(cv2.imread(str(bf)), cv2.COLOR_BGR2RGB)
        h = round(rgb.shape[0] * width / rgb.shape[1])
        out["butterfly"] = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_CUBIC)
    return out


def pixel_ratio(rule: Rule, h: int, w: int, params) -> float:
    from dreamvideo.dream import octave_sizes

    seen = plain = 0
    for oh, ow in octave_sizes(h, w, params.octaves, params.octave_scale, 75):
        p = rule(oh, ow, params.jitter, h / oh)
        seen += (oh + 2 * p) * (ow + 2 * p)
        plain += oh * ow
    return seen / plain


def run(width: int = 640, steps: int | None = None, repeats: int = 2, rules: list[str] | None = None,
        log=print) -> tuple[list[Row], dict]:
    from dreamvideo import dream
    from dreamvideo.dream import DreamParams, get_engine

    d = default_settings().dream
    engine = get_engine(d)
    params = DreamParams.from_config(d, **({} if steps is None else {"steps": steps}))
    names = rules or list(RULES)
    imgs = images(width)
    engine.dream(vtest_frame(160, 90), DreamParams.from_config(d, steps=1, octaves=1))  # the one trace
    original = dream.edge_pad
    res: dict = {n: {"s": [], "ratio": {}} for n in names}
    try:
        for rep in range(repeats):
            order = names if rep % 2 == 0 else names[::-1]  # alternate, so drift in load hits all rules
            for n in order:
                dream.edge_pad = RULES[n]
                for key, img in imgs.items():
                    t = time.perf_counter()
                    out = engine.dream(img, params, seed=0)
                    dt = time.perf_counter() - t
                    if key == "vtest":
                        res[n]["s"].append(dt)
                    res[n]["ratio"][key] = band_ratio(out, img)
                log(f"  {n}: {dt:.2f} s, edge/interior " + ", ".join(f"{k} {v:.3f}" for k, v in res[n]["ratio"].items()))
    finally:
        dream.edge_pad = original
    h, w = imgs["vtest"].shape[:2]
    base = min(res["today"]["s"]) if "today" in res else None
    rows = [Row("model / settings", f"{engine.name} {'+'.join(engine.layers)}",
                f"{params.octaves} oct x {params.steps} steps, jitter {params.jitter}, {w}x{h}; best of {repeats}")]
    for n in names:
        r = res[n]
        r["pixels"] = pixel_ratio(RULES[n], h, w, params)
        speed = f"; {base / min(r['s']):.2f}x today" if base else ""
        rows.append(Row(f"rule {n}", " / ".join(f"{v:.3f}" for v in r["ratio"].values()),
                        f"edge/interior ({', '.join(r['ratio'])}); pixels x{r['pixels']:.3f}; "
                        f"{min(r['s']):.2f} s/dream{speed}"))
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=640, help="image width in pixels")
    ap.add_argument("--steps", type=int, default=None, help="steps per octave (default: the preset's)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rules", default=None, help=f"comma-separated, of {', '.join(RULES)}")
    a = ap.parse_args(argv)
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    rows, _ = run(a.size, a.steps, a.repeats, a.rules.split(",") if a.rules else None,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
    print_table(rows, "edge padding rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
