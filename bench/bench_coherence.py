"""Benchmark coherence: how steady each way of chaining a dream is, and whether it holds its look.

Run:  python bench/bench_coherence.py [--model efficientnet_lite0|inception_v3] [--side 192]
                                      [--frames 96] [--clips vtest,tree,pedestrians]
                                      [--methods scratch,blend85,undamped,v1,new] [--set key=value ...]

One table per model over real clips (../shared/media/vtest.avi from frame 100, tree.avi,
samples/pedestrians.mp4), each decoded once (longer side ``--side``) with its DIS flow and
forward-backward mask computed once and shared by every method. The methods:

  scratch   every frame dreamed from its raw frame (``--independent``);
  blend85   no flow: the next frame starts from 0.85 previous dream + 0.15 raw frame and is dreamed
            with the full steps (pytorch-deepdream's video mode);
  undamped  flow-warped dream detail added to the raw frame, dreamed with the warm steps at full step
            size, no decay, no blend, no colour hold (DeepDreamAnim's way);
  v1        this release's first coherent chain (dreamvideo 0.1 defaults: bilinear warp, std colour
            hold, warm steps at 0.35 of the step everywhere, no temporal term);
  new       the current defaults (config.VideoConfig);
  deflicker the defaults with the ``--deflicker`` post-pass (deflicker = 0.5).

scratch and blend85 dream every frame in full (about 10x a warm frame), so they run on the first
``--full-frames`` frames of each clip (16 by default), with their from-scratch samples from those.

Columns come from dreamvideo.metrics (the same code as ``--report``): flicker, settled strength over
a from-scratch dream of 3 sampled frames of the second half (metrics.scratch_indices; the from-scratch
dreams are those of the ``scratch`` method, same seeds), growth (last quarter / first), moving /
static strength, drift per 100 frames, and seconds per frame (chain step + flow, this run, median),
with the ratio of a warm frame to a from-scratch one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, inception_weights, median, shared_dir

CLIPS = {
    "vtest": ("media/vtest.avi", 100),  # (path under shared/ or the repository, first frame)
    "tree": ("media/tree.avi", 0),
    "pedestrians": ("samples/pedestrians.mp4", 0),
}

# The v1 chain (dreamvideo 0.1): what `new` is measured against, written out so later default
# changes do not move this row.
V1 = {"warp": "detail", "blend": 0.02, "warm_steps": 4, "warm_octaves": 2, "warm_step_scale": 0.35,
      "fresh_step_scale": 0.35, "catch_up": 0.0, "carry_untrusted": 0.0, "detail_decay": 0.98,
      "temporal_weight": 0.0, "warp_kernel": "linear",
      "color_match": True, "color_hold": "std", "deflicker": 0.0}


FULL = ("scratch", "blend85")  # methods that dream every frame with the full steps


def method_settings(base, method: str):
    """The Settings of one method, from the ``base`` (the model and the user's --set)."""
    d = base.dream
    if method == "scratch":
        return base.replace(coherent=False)
    if method == "blend85":
        return base.replace(warp="frame", blend=0.15, warm_steps=d.steps, warm_octaves=d.octaves, warm_step_scale=1.0,
                            fresh_step_scale=1.0, temporal_weight=0.0, color_match=False, deflicker=0.0,
                            warp_kernel="linear")
    if method == "undamped":
        return base.replace(**{**V1, "blend": 0.0, "detail_decay": 1.0, "warm_step_scale": 1.0,
                               "fresh_step_scale": 1.0, "color_match": False})
    if method == "v1":
        return base.replace(**V1)
    if method == "new":
        return base
    if method == "deflicker":
        return base.replace(deflicker=0.5)
    raise SystemExit(f"unknown method {method!r}")


def load_clip(name: str, side: int, frames: int, flow: str) -> tuple[list[np.ndarray], list, float]:
    """Frames (uint8), coherence tuples (None for the first) and seconds of flow per frame."""
    from dreamvideo.decode import iter_frames
    from dreamvideo.flow import FlowEstimator, coherence

    rel, start = CLIPS[name]
    path = (shared_dir() / rel) if rel.startswith("media/") else ROOT / rel
    if not path.is_file():
        raise SystemExit(f"{path} is absent")
    raws = []
    for i, f in enumerate(iter_frames(path, max_side=side)):
        if i >= start:
            raws.append(f)
        if len(raws) >= frames:
            break
    est = FlowEstimator(flow)
    t = time.perf_counter()
    cohs = [None] + [coherence(raws[i], raws[i - 1], est) for i in range(1, len(raws))]
    return raws, cohs, (time.perf_counter() - t) / max(len(raws) - 1, 1)


def run_method(engine, settings, raws: list[np.ndarray], cohs: list, method: str,
               scratch: dict[int, np.ndarray] | None = None, keep_thumbs: bool = False):
    """Run the chain over the clip; returns (Metrics, outputs, per-frame step seconds, seeded flags)."""
    from dreamvideo.chain import VideoChain
    from dreamvideo.metrics import Metrics

    chain = VideoChain(engine, settings)
    metrics = Metrics(keep_thumbs=keep_thumbs)
    outs, secs, seeded = [], [], []
    for i, (raw, coh) in enumerate(zip(raws, cohs)):
        step_coh = coh
        if method == "blend85" and coh is not None:  # no flow: the previous dream stays where it was
            h, w = raw.shape[:2]
            step_coh = (np.zeros((h, w, 2), np.float32), np.ones((h, w), np.float32), coh[2])
        prev_raw, prev_out = chain.prev_raw, chain.prev_out
        t = time.perf_counter()
        out, info = chain.step(i, raw, step_coh)
        secs.append(time.perf_counter() - t)
        seeded.append(info["seeded"])
        metrics.add(raw, out, prev_raw, prev_out, coh, info["cut"], i)
        outs.append(out)
    for i, s in (scratch or {}).items():
        metrics.add_scratch(i, raws[i], s)
    return metrics, outs, secs, seeded


def scratch_dreams(engine, settings, raws: list[np.ndarray], picks: list[int]) -> dict[int, np.ndarray]:
    """Frames ``picks`` dreamed from scratch at ``settings`` (the chain's first-frame path, same seeds)."""
    from dreamvideo.chain import VideoChain

    chain = VideoChain(engine, settings)
    return {i: chain.step(i, raws[i], None)[0] for i in picks}


def parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k.strip()] = v.strip()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0", choices=["efficientnet_lite0", "inception_v3"])
    ap.add_argument("--side", type=int, default=192, help="longer side of the frames, pixels")
    ap.add_argument("--frames", type=int, default=96, help="frames per clip (fewer where the clip is shorter)")
    ap.add_argument("--clips", default="vtest,tree,pedestrians")
    ap.add_argument("--full-frames", type=int, default=16,
                    help="frames for the methods that dream every frame in full (scratch, blend85): they cost ~10x")
    ap.add_argument("--methods", default="scratch,blend85,undamped,v1,new,deflicker")
    ap.add_argument("--set", action="append", default=[], help="key=value on top of the defaults (all methods)")
    ap.add_argument("--png", type=Path, default=None, help="write input|output strips of each method here")
    a = ap.parse_args(argv)
    from dreamvideo.config import Settings, merge
    from dreamvideo.dream import DreamParams, get_engine
    from dreamvideo.metrics import scratch_indices
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    flat: dict = {"model": a.model}
    if a.model == "inception_v3":
        w = inception_weights()
        if w is None:
            raise SystemExit("inception_v3 needs shared/weights/inception_v3_notop_imagenet_to_mixed5.weights.h5")
        flat["weights"] = str(w)
    base = merge(merge(Settings(), flat, "bench"), parse_sets(a.set), "--set")
    engine = get_engine(base.dream)
    methods = [m for m in a.methods.split(",") if m]
    print(f"model {engine.name}, side {a.side}, settings: {', '.join(a.set) or 'defaults'}", flush=True)
    header = ("| clip | method | flicker | settled / scratch | growth | moving / static | drift /100 | s/frame | "
              "warm / scratch |")
    rows = [header, "|" + "---|" * 9]
    for clip in a.clips.split(","):
        raws, cohs, flow_s = load_clip(clip, a.side, a.frames, base.video.flow)
        n = len(raws)
        engine.dream(raws[0], DreamParams.from_config(base.dream, steps=1, octaves=1))  # the one trace
        picks = scratch_indices(n)
        t = time.perf_counter()
        scratch = scratch_dreams(engine, base, raws, picks)
        scratch_s = (time.perf_counter() - t) / len(picks)

        def scratch_of(k: int, raws=raws) -> dict[int, np.ndarray]:  # a shorter run samples its own second half
            return scratch_dreams(engine, base, raws, scratch_indices(k))
        for method in methods:
            s = method_settings(base, method)
            k = min(n, a.full_frames) if method in FULL else n
            m, outs, secs, seeded = run_method(engine, s, raws[:k], cohs[:k], method,
                                               {i: f for i, f in scratch.items() if i < k} or scratch_of(k))
            summ = m.summary()
            warm = [x for x, sd in zip(secs, seeded) if sd]
            per = median(warm if warm else secs) + flow_s
            size = f"{raws[0].shape[1]}x{raws[0].shape[0]}"
            rows.append(f"| {clip} ({k} fr, {size}) | {method} | {summ.get('flicker', float('nan')):.2f} | "
                        f"{summ.get('settled_over_scratch', float('nan')):.2f} ({summ.get('strength_settled', 0):.1f}/"
                        f"{summ.get('scratch_strength', 0):.1f}) | {summ.get('growth', float('nan')):.2f} | "
                        f"{summ.get('moving_over_static', float('nan')):.2f} | "
                        f"{summ.get('drift_per_100_frames', 0):+.2f} | "
                        f"{per:.2f} | {per / (scratch_s + flow_s):.2f} |")
            print(rows[-1], flush=True)
            if a.png is not None:
                from dreamvideo.encode import write_image

                a.png.mkdir(parents=True, exist_ok=True)
                idx = [0, k // 4, k // 2, k - 1]
                strip = np.concatenate([np.concatenate([raws[i], outs[i]], axis=1) for i in idx], axis=0)
                write_image(a.png / f"{engine.name}_{clip}_{method}.png", strip)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
