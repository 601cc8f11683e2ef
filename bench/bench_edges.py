"""Edge padding: how much each rule costs and whether the frame's edges still dream like its interior.

Run:  python bench/bench_edges.py [--size 640] [--steps N] [--repeats 3] [--rules today,model,...]
                                  [--models inception_v3,efficientnet_lite0]

For each model and each padding rule (the reflect padding added around every octave before its
gradients, and whether the gradient landing on it is folded back onto the picture: dream.edge_pad)
it dreams the same images with the same engine, seed and settings (the default preset; the pad and
the fold are run-time inputs, so no rule retraces, which the bench asserts) and prints:
  edge / interior  mean |out - in| in the outer 8 px band over that in the interior (>= 48 px
                   from every edge): 1.0 = the edges dream as strongly as the middle; and the same of
                   the weakest side alone (the edge a viewer notices)
  FLOPs            the dream's FLOPs (bench/flops.py, over the tiles the network is given) against
                   today's: unlike pixels, it leaves out what a valid-padded network drops unseen
  pixels           pixels the network sees per dream (all octaves, padded) over the unpadded ones
  s/dream          best-of-repeats seconds of one whole dream of the vtest frame, rules alternated,
                   and the speed-up against "today" (16 px at every octave, no fold: the rule every
                   model had before the per-model one)
Rules: "today", "model" (the model spec's edge_pad, edge_fold and edge_grid: what the engine does),
"none", "scaled", "full-only", "N" (N px), "fold-N" (N px, folded), and "grid-N" / "fold-grid-N" (the
same padded further to the model's whole input sizes, dream.fit_grid). Images: vtest.avi frame 100 (16:9),
butterfly.jpg (the image the padding was first measured on), fruits.jpg and starry_night.jpg, all resized
to ``--size`` px wide.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import Row, default_settings, print_table, shared_dir, vtest_frame

# A padding rule, as dream.edge_pad: (model spec, octave h, octave w, jitter, frame side / octave side)
# -> (reflect padding in px a side, whether the margin's gradient is folded back onto the picture).
Rule = Callable[[Any, int, int, int, float], tuple[int, bool]]


def _today(spec, h: int, w: int, jitter: int, factor: float) -> tuple[int, bool]:
    """The rule every model had before the per-model one: max(jitter, 16) px at every octave, no fold."""
    return min(max(jitter, 16), min(h, w) - 1), False


def _const(p: int, fold: bool = False) -> Rule:
    return lambda spec, h, w, jitter, factor: (min(p, min(h, w) - 1), fold)


def _scaled(spec, h: int, w: int, jitter: int, factor: float) -> tuple[int, bool]:
    return min(math.ceil(max(jitter, 16) / factor), min(h, w) - 1), False


def _full_only(spec, h: int, w: int, jitter: int, factor: float) -> tuple[int, bool]:
    return (min(max(jitter, 16), min(h, w) - 1) if factor <= 1.0 else 0), False


def _no_grid(spec, h: int, w: int, pad: int, tile: int) -> tuple[tuple[int, ...], tuple[int, int]]:
    """dream.fit_grid as it was before the grid: ``pad`` on every side, square tiles."""
    return (pad, pad, pad, pad), (tile, tile)


RULES: dict[str, Rule] = {
    "today": _today,
    "none": _const(0),
    "scaled": _scaled,
    "full-only": _full_only,
}


def rule(name: str, own: Rule) -> tuple[Rule, bool]:
    """A rule by name and whether it pads to the model's grid (dream.fit_grid): ``model`` (``own``, the
    engine's dream.edge_pad, with the grid), one of RULES (no grid), ``N`` (N px at every octave, no fold,
    no grid), ``fold-N`` (the same with the fold), ``grid-N`` / ``fold-grid-N`` (the same on the grid)."""
    if name == "model":
        return own, True
    if name in RULES:
        return RULES[name], False
    fold = name.startswith("fold-")
    rest = name.removeprefix("fold-")
    grid = rest.startswith("grid-")
    px = rest.removeprefix("grid-")
    if not px.isdigit():
        raise SystemExit(f"unknown rule {name!r}: use model, {', '.join(RULES)}, N, fold-N, grid-N or fold-grid-N")
    return _const(int(px), fold), grid


def band_ratio(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> float:
    """Mean |out - in| of the outer ``band`` px over that of the interior ``inner`` px from the edges."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    mask = np.zeros(d.shape, bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return float(d[mask].mean() / d[inner:-inner, inner:-inner].mean())


def weakest_side(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> float:
    """The weakest of the four sides' outer ``band`` px (corners left out), as ``band_ratio`` measures the
    whole border: the edge a viewer notices is the weakest one."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    b = band
    sides = (d[:b, b:-b], d[-b:, b:-b], d[b:-b, :b], d[b:-b, -b:])
    return float(min(s.mean() for s in sides) / d[inner:-inner, inner:-inner].mean())


def images(width: int) -> dict[str, np.ndarray]:
    import cv2

    out = {"vtest": vtest_frame(width, width * 9 // 16)}
    for name in ("butterfly", "fruits", "starry_night"):
        path = shared_dir() / "media" / f"{name}.jpg"
        if path.is_file():
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            h = round(rgb.shape[0] * width / rgb.shape[1])
            out[name] = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
    return out


def pixel_ratio(rule: Rule, grid: bool, spec, h: int, w: int, params) -> float:
    """Pixels the network sees per dream (every octave, padded as the rule and grid say) over the picture's."""
    from dreamvideo.dream import fit_grid, octave_sizes

    seen = plain = 0
    for oh, ow in octave_sizes(h, w, params.octaves, params.octave_scale, spec.min_side):
        p, _ = rule(spec, oh, ow, params.jitter, h / oh)
        top, bottom, left, right = (fit_grid if grid else _no_grid)(spec, oh, ow, p, params.tile_size)[0]
        seen += (oh + top + bottom) * (ow + left + right)
        plain += oh * ow
    return seen / plain


def dream_flops(rule: Rule, grid: bool, engine, h: int, w: int, params) -> float:
    """FLOPs of one dream (every octave's steps over the tiles the network is given, padded and tiled as
    the rule and grid say), counted from the model's layers (bench/flops.py): unlike the pixel ratio, it
    leaves out the rows and columns a valid-padded network drops unseen off sizes that are not whole."""
    from bench.common import tiles
    from bench.flops import step_flops
    from dreamvideo.dream import fit_grid, octave_sizes

    spec = engine.spec
    tile = max(int(params.tile_size), spec.min_side)
    total = 0.0
    for oh, ow in octave_sizes(h, w, params.octaves, params.octave_scale, spec.min_side):
        p, _ = rule(spec, oh, ow, params.jitter, h / oh)
        (top, bottom, left, right), sizes = (fit_grid if grid else _no_grid)(spec, oh, ow, p, tile)
        shapes = tiles(oh + top + bottom, ow + left + right, sizes, spec.min_side)
        total += params.steps * step_flops(engine.feature_model, shapes)["total"]
    return total


def settings_for(model: str):
    """The default preset's dream settings with ``model`` (InceptionV3 with the shared weights)."""
    from bench.common import inception_weights

    if model == "inception_v3":
        w = inception_weights()
        if w is None:
            raise SystemExit("InceptionV3 weights absent from shared/weights: use --models efficientnet_lite0")
        return default_settings(model=model, weights=str(w)).dream
    return default_settings(model=model, weights=None).dream


def run_model(
    model: str, width: int, steps: int | None, repeats: int, names: list[str], log=print
) -> tuple[list[Row], dict]:
    """Every rule of ``names`` on one model: best-of-``repeats`` s/dream of the vtest frame (rules
    alternated), edge / interior of both images (dreamed once: the dream is seeded), pixel ratios."""
    from dreamvideo import dream
    from dreamvideo.dream import DreamParams, get_engine

    d = settings_for(model)
    engine = get_engine(d)
    params = DreamParams.from_config(d, **({} if steps is None else {"steps": steps}))
    imgs = images(width)
    original, original_grid = dream.edge_pad, dream.fit_grid
    rules = {n: rule(n, original) for n in names}
    engine.dream(vtest_frame(160, 90), DreamParams.from_config(d, steps=1, octaves=1))  # the one trace
    traces = engine.trace_count
    res: dict = {n: {"s": [], "ratio": {}, "weakest": {}} for n in names}
    try:
        for rep in range(repeats):
            order = names if rep % 2 == 0 else names[::-1]  # alternate, so drift in load hits all rules
            for n in order:
                dream.edge_pad = rules[n][0]
                dream.fit_grid = original_grid if rules[n][1] else _no_grid
                for key, img in imgs.items():
                    if key != "vtest" and rep > 0:
                        continue  # same seed, same dream: its ratio is known
                    t = time.perf_counter()
                    out = engine.dream(img, params, seed=0)
                    dt = time.perf_counter() - t
                    if key == "vtest":
                        res[n]["s"].append(dt)
                        vt = dt
                    res[n]["ratio"][key] = band_ratio(out, img)
                    res[n]["weakest"][key] = weakest_side(out, img)
                log(
                    f"  {model} {n}: {vt:.2f} s, edge/interior (weakest side) "
                    + ", ".join(f"{k} {v:.3f} ({res[n]['weakest'][k]:.3f})" for k, v in res[n]["ratio"].items())
                )
    finally:
        dream.edge_pad, dream.fit_grid = original, original_grid
    assert engine.trace_count == traces, "a padding rule retraced the step"
    h, w = imgs["vtest"].shape[:2]
    base = min(res["today"]["s"]) if "today" in res else None
    rows = [
        Row(
            f"{model}: settings",
            f"{'+'.join(engine.layers)}",
            f"{params.octaves} oct x {params.steps} steps, jitter {params.jitter}, {w}x{h}; best of {repeats}",
        )
    ]
    for n in names:
        res[n]["pixels"] = pixel_ratio(*rules[n], engine.spec, h, w, params)
        res[n]["flops"] = dream_flops(*rules[n], engine, h, w, params)
    for n in names:
        r = res[n]
        r["pad"] = rules[n][0](engine.spec, h, w, params.jitter, 1.0)
        speed = f"; {base / min(r['s']):.2f}x today" if base else ""
        if "today" in res:
            speed += f" ({res['today']['flops'] / r['flops']:.3f}x from FLOPs)"
        rows.append(
            Row(
                f"{model}: rule {n} ({r['pad'][0]} px{', fold' if r['pad'][1] else ''}"
                f"{', grid' if rules[n][1] and engine.spec.edge_grid else ''})",
                " / ".join(f"{v:.2f} ({r['weakest'][k]:.2f})" for k, v in r["ratio"].items()),
                f"edge/interior, weakest side in brackets ({', '.join(r['ratio'])}); pixels x{r['pixels']:.3f}; "
                f"{min(r['s']):.2f} s/dream{speed}",
            )
        )
    return rows, res


def run(
    width: int = 640,
    steps: int | None = None,
    repeats: int = 3,
    rules: list[str] | None = None,
    models: list[str] | None = None,
    log=print,
) -> tuple[list[Row], dict]:
    """``run_model`` for each model (default: inception_v3 where its weights are, and efficientnet_lite0)."""
    from bench.common import inception_weights

    models = models or [*(["inception_v3"] if inception_weights() else []), "efficientnet_lite0"]
    rows: list[Row] = []
    res: dict = {}
    for m in models:
        r, res[m] = run_model(m, width, steps, repeats, rules or ["today", "model"], log)
        rows += r
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=640, help="image width in pixels")
    ap.add_argument("--steps", type=int, default=None, help="steps per octave (default: the preset's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--rules", default="today,model", help=f"comma-separated: model, {', '.join(RULES)}, N or fold-N (px)"
    )
    ap.add_argument("--models", default=None, help="comma-separated (default: inception_v3, efficientnet_lite0)")
    a = ap.parse_args(argv)
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    rows, _ = run(
        a.size,
        a.steps,
        a.repeats,
        a.rules.split(","),
        a.models.split(",") if a.models else None,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print_table(rows, "edge padding rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
