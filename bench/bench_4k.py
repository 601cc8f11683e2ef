"""One 3840x2160 frame in a fresh process: seconds and peak RSS (VmHWM), for the 4K target.

Run:  python bench/bench_4k.py [--steps 2] [--octaves N] [--tile 512] [--warm] [--json]

The tiles bound memory: the engine computes gradients over tiles of at most dream.tile_size pixels
a side, so peak RSS is the model, a few full-frame float32 buffers and one tile's activations.
Runs in its own process so VmHWM is this frame's and the model's alone. The default measures a
from-scratch frame with ``--steps`` steps per octave (all the preset's octaves) and extrapolates
the step part linearly to the preset's steps; --warm dreams it as a warm video frame instead
(video.warm_steps over video.warm_octaves), measured as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import default_settings, peak_rss_bytes, strength, vtest_frame  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="steps per octave actually run (from-scratch mode)")
    ap.add_argument("--octaves", type=int, default=None, help="octaves (default: the preset's)")
    ap.add_argument("--tile", type=int, default=None, help="tile_size (default: the preset's)")
    ap.add_argument("--warm", action="store_true", help="dream as a warm frame (warm_steps x warm_octaves)")
    ap.add_argument("--size", default="3840x2160")
    ap.add_argument("--precision", default=None, help="dream.precision (default: the preset's)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    a = ap.parse_args(argv)
    from dreamvideo.dream import DreamParams, get_engine
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    w, h = (int(v) for v in a.size.lower().split("x"))
    over = {} if a.tile is None else {"tile_size": a.tile}
    if a.precision:
        over["precision"] = a.precision
    s = default_settings(**over)
    d, v = s.dream, s.video
    t0 = time.perf_counter()
    engine = get_engine(d)
    engine.dream(vtest_frame(160, 90), DreamParams.from_config(d, steps=1, octaves=1))  # trace once
    startup = time.perf_counter() - t0
    rss_loaded = peak_rss_bytes()
    image = vtest_frame(w, h).astype("float32")
    if a.warm:
        steps, octaves = v.warm_steps, min(v.warm_octaves, d.octaves)
    else:
        steps, octaves = a.steps, a.octaves or d.octaves
    params = DreamParams.from_config(d, steps=steps, octaves=octaves)
    t = time.perf_counter()
    out = engine.dream(image, params, seed=0)
    seconds = time.perf_counter() - t
    res = {"size": f"{w}x{h}", "steps": steps, "octaves": octaves, "tile_size": d.tile_size,
           "precision": d.precision,
           "warm": a.warm, "seconds": seconds, "startup_s": startup,
           "peak_rss_bytes": peak_rss_bytes(), "rss_after_load_bytes": rss_loaded,
           "strength": strength(out, image)}
    if not a.warm and steps < d.steps:
        res["extrapolated_first_frame_s"] = seconds * d.steps / steps  # step time dominates: linear in steps
        res["extrapolated_to_steps"] = d.steps
    if a.json:
        print(json.dumps(res))
    else:
        for k, val in res.items():
            print(f"{k:28s} {val}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
