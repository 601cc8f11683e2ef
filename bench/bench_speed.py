"""Speed experiments for the dream step (issue: what makes it fast). Each prints a ratio against a
baseline measured in the same run (interleaved; best of N), at 640x360 on a real frame.

Run:  python bench/bench_speed.py [EXPERIMENT ...] [--repeats 3]

Experiments:
  tiles     tile_size 512 (default) vs larger/smaller tiles, at 640x360 and 1280x720
  threads   intra/inter-op thread counts and TF_ENABLE_ONEDNN_OPTS=0 (one fresh process each)
  xla       jit_compile=True on a fixed-shape tile gradient: compile seconds and speed-up
  bf16      bfloat16 compute (Keras mixed_bfloat16; AVX512_BF16 on this CPU): speed and activation gain
  batch     two equal tiles as one batch of 2 vs two calls
  profile   where a step's time goes, by TensorFlow op type (tf.profiler trace of 2 steps), engine and classic
  fold      batch norm folded into the convolutions (prototype, not in the engine): speed, activation gain
  flow      coherence() at full vs reduced flow resolution (FlowEstimator max_side)
  overlap   render_video (decode + flow in a producer thread) vs the serial stage sum
  rss       peak RSS of one 3840x2160 step vs tile_size (fresh process each)
Default: all but overlap and rss (which take minutes).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, default_settings, run_python, vtest_frame  # noqa: E402

GiB = 2**30


def _engine():
    from dreamvideo.dream import get_engine
    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    return get_engine(default_settings().dream)


def _step_s(engine, image, tile, steps=3):
    from bench.bench_dream import engine_step_seconds

    return engine_step_seconds(engine, image, tile, steps=steps, repeats=1)


def exp_tiles(repeats: int) -> None:
    from bench.common import engine_tiles
    from bench.flops import step_flops

    eng = _engine()
    for (w, h), cands in (((640, 360), (512, 640, 384, 256)), ((1280, 720), (512, 720, 1280, 384))):
        img = vtest_frame(w, h).astype(np.float32)
        best = {t: float("inf") for t in cands}
        for _ in range(repeats):
            for t in cands:
                best[t] = min(best[t], _step_s(eng, img, t))
        base = best[cands[0]]
        for t in cands:
            tl = engine_tiles(h, w, t, eng.spec.min_side, 16, eng.spec)
            gf = step_flops(eng.feature_model, tl)["total"] / 1e9
            print(
                f"tiles {w}x{h} tile_size {t:5d}: {len(tl):2d} tiles {tl[0][1]}x{tl[0][0]}  {best[t]:.3f} s/step "
                f"({base / best[t]:.2f}x vs 512)  {gf:.1f} GFLOP  {gf / best[t]:.0f} GFLOP/s",
                flush=True,
            )


_THREAD_SNIPPET = """
import os, sys, json, time
sys.path.insert(0, {root!r})
intra, inter = {intra}, {inter}
from dreamvideo.model import import_tensorflow
tf = import_tensorflow()
if intra is not None: tf.config.threading.set_intra_op_parallelism_threads(intra)
if inter is not None: tf.config.threading.set_inter_op_parallelism_threads(inter)
from bench.common import default_settings, vtest_frame
from bench.bench_dream import engine_step_seconds
from dreamvideo.dream import get_engine
eng = get_engine(default_settings().dream)
img = vtest_frame(640, 360).astype('float32')
print(json.dumps({{"s": min(engine_step_seconds(eng, img, 512, steps=3, repeats=1) for _ in range({repeats}))}}))
"""


def exp_threads(repeats: int) -> None:
    configs = [
        ("default (0/0 = TF picks)", None, None, {}),
        ("intra 2, inter 1", 2, 1, {}),
        ("intra 1, inter 2", 1, 2, {}),
        ("intra 2, inter 2", 2, 2, {}),
        ("intra 1, inter 1", 1, 1, {}),
        ("oneDNN off (Eigen)", None, None, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ]
    res = {}
    for _round in range(2):  # two rounds, interleaved, best of both
        for name, intra, inter, env in configs:
            code = _THREAD_SNIPPET.format(root=str(ROOT), intra=intra, inter=inter, repeats=repeats)
            out = run_python(["-c", code], env=env)
            s = json.loads(out.strip().splitlines()[-1])["s"]
            res[name] = min(res.get(name, float("inf")), s)
    base = res[configs[0][0]]
    for name, *_ in configs:
        print(f"threads {name:26s}: {res[name]:.3f} s/step  ({base / res[name]:.2f}x vs default)", flush=True)


def _tile_grad_fn(engine, jit: bool, batch: bool = False):
    import tensorflow as tf

    fm, to_input = engine.feature_model, engine.spec.to_input

    def g(x):  # x: [N, h, w, 3] tiles in dream space
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = fm(to_input(x), training=False)
            acts = acts if isinstance(acts, (list, tuple)) else [acts]
            loss = tf.add_n([tf.reduce_sum(tf.reduce_mean(a, axis=[1, 2, 3])) for a in acts])
        return tape.gradient(loss, x)

    return tf.function(g, jit_compile=jit)


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def exp_xla(repeats: int) -> None:
    import tensorflow as tf

    eng = _engine()
    x = tf.constant(vtest_frame(320, 360)[None].astype(np.float32) / 127.5 - 1)  # one 640x360 tile
    plain, xla = _tile_grad_fn(eng, False), _tile_grad_fn(eng, True)
    t = time.perf_counter()
    plain(x).numpy()
    t_plain_trace = time.perf_counter() - t
    t = time.perf_counter()
    try:
        gx = xla(x).numpy()
    except Exception as err:  # noqa: BLE001
        print(f"xla: failed to compile: {str(err).splitlines()[0][:200]}")
        return
    t_xla_compile = time.perf_counter() - t
    gp = plain(x).numpy()
    rel = float(np.abs(gx - gp).max() / (np.abs(gp).max() + 1e-12))
    bp = bx = float("inf")
    for _ in range(repeats):
        bp = min(bp, _best(lambda: plain(x).numpy(), 1))
        bx = min(bx, _best(lambda: xla(x).numpy(), 1))
    x2 = tf.constant(vtest_frame(320, 350)[None].astype(np.float32) / 127.5 - 1)
    t = time.perf_counter()
    xla(x2).numpy()
    t_new_shape = time.perf_counter() - t
    print(
        f"xla: first call (trace+compile) {t_xla_compile:.1f} s vs plain trace {t_plain_trace:.1f} s; "
        f"a new shape recompiles: {t_new_shape:.1f} s",
        flush=True,
    )
    print(
        f"xla: tile 320x360 gradient plain {bp:.3f} s, XLA {bx:.3f} s  ({bp / bx:.2f}x); max rel diff {rel:.1e}",
        flush=True,
    )


def exp_bf16(repeats: int) -> None:
    import keras
    import tensorflow as tf

    from dreamvideo.model import load_model

    eng = _engine()
    s = default_settings().dream
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        loaded = load_model(s.model, s.weights)
    finally:
        keras.config.set_dtype_policy("float32")
    base = loaded.keras_model
    fm16 = keras.Model(base.inputs, [base.get_layer(n).output for n in eng.layers])

    def make(fm):
        def g(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                acts = fm(x, training=False)
                loss = tf.add_n([tf.reduce_mean(tf.cast(a, tf.float32)) for a in acts])
            return loss, tape.gradient(loss, x)

        return tf.function(g)

    f32, f16 = make(eng.feature_model), make(fm16)
    x = tf.constant(vtest_frame(320, 360)[None].astype(np.float32) / 127.5 - 1)
    l32, g32 = f32(x)
    l16, g16 = f16(x)
    b32 = b16 = float("inf")
    for _ in range(repeats):
        b32 = min(b32, _best(lambda: f32(x)[1].numpy(), 1))
        b16 = min(b16, _best(lambda: f16(x)[1].numpy(), 1))
    cos = float(np.sum(g32.numpy() * g16.numpy()) / (np.linalg.norm(g32.numpy()) * np.linalg.norm(g16.numpy()) + 1e-12))
    print(
        f"bf16: tile 320x360 gradient f32 {b32:.3f} s, mixed_bfloat16 {b16:.3f} s ({b32 / b16:.2f}x); "
        f"loss {float(l32):.4f} vs {float(l16):.4f}; gradient cosine {cos:.4f}",
        flush=True,
    )
    # a whole dream with an engine on the bfloat16 model, judged by the float32 model's activation
    from bench.common import strength
    from dreamvideo.dream import DreamEngine, DreamParams

    eng16 = DreamEngine(loaded, eng.layers, eng.loss_kind)
    img = vtest_frame(640, 360).astype(np.float32)
    p = DreamParams(steps=6, step_size=0.03, octaves=2, octave_scale=1.4, jitter=16, tile_size=512)
    eng.dream(img, DreamParams(**{**p.__dict__, "steps": 1}))
    eng16.dream(img, DreamParams(**{**p.__dict__, "steps": 1}))
    t32 = t16 = float("inf")
    for _ in range(max(1, repeats - 1)):
        t = time.perf_counter()
        o32 = eng.dream(img, p, seed=0)
        t32 = min(t32, time.perf_counter() - t)
        t = time.perf_counter()
        o16 = eng16.dream(img, p, seed=0)
        t16 = min(t16, time.perf_counter() - t)
    a0 = eng.activation(img)
    g32, g16 = eng.activation(o32) - a0, eng.activation(o16) - a0
    print(
        f"bf16: dream 640x360 (2 oct x 6 steps) f32 {t32:.2f} s, bf16 {t16:.2f} s ({t32 / t16:.2f}x); "
        f"activation gain (f32 judge) {g32:.4f} vs {g16:.4f} ({g16 / g32:.2f}); strength {strength(o32, img):.1f} vs "
        f"{strength(o16, img):.1f}; mean |f32 - bf16 output| {np.abs(o32 - o16).mean():.1f}",
        flush=True,
    )


def exp_batch(repeats: int) -> None:
    import tensorflow as tf

    eng = _engine()
    f = _tile_grad_fn(eng, False)
    img = vtest_frame(640, 360).astype(np.float32) / 127.5 - 1
    a = tf.constant(img[None, :, :320])
    b = tf.constant(img[None, :, 320:])
    ab = tf.concat([a, b], 0)
    f(a), f(ab)
    bs = bb = float("inf")
    for _ in range(repeats):
        bs = min(bs, _best(lambda: (f(a).numpy(), f(b).numpy()), 1))
        bb = min(bb, _best(lambda: f(ab).numpy(), 1))
    print(
        f"batch: two 320x360 tiles as two calls {bs:.3f} s, as one batch of 2 {bb:.3f} s ({bs / bb:.2f}x)", flush=True
    )


def op_profile(fn) -> tuple[float, collections.Counter]:
    """Wall seconds of fn() and summed seconds per TensorFlow op type, from a tf.profiler trace."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    d = tempfile.mkdtemp(prefix="dv-prof-")
    tf.profiler.experimental.start(d)
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    tf.profiler.experimental.stop()
    f = glob.glob(d + "/**/*.xplane.pb", recursive=True)[0]
    xs = xplane_pb2.XSpace()
    xs.ParseFromString(Path(f).read_bytes())
    agg: collections.Counter = collections.Counter()
    for pl in xs.planes:
        md = dict(pl.event_metadata.items())
        for line in pl.lines:
            for ev in line.events:
                name = md[ev.metadata_id].name
                if ":" not in name:
                    continue
                typ = name.rsplit(":", 1)[1].strip()
                if typ in ("Process", "Run") or typ.startswith("__inference"):
                    continue  # wrappers around the whole call, not ops
                agg[typ] += ev.duration_ps / 1e12
    shutil.rmtree(d, ignore_errors=True)
    return wall, agg


def _print_profile(title: str, wall: float, agg: collections.Counter, n: int = 12) -> None:
    tot = sum(agg.values())
    print(
        f"{title}: wall {wall:.3f} s, summed op time {tot:.3f} s (ops of parallel Inception branches overlap)",
        flush=True,
    )
    for k, v in agg.most_common(n):
        print(f"  {k:32s} {v:7.3f} s  {v / tot * 100:5.1f}%")


def exp_profile(repeats: int, size=(640, 360), tile=512, steps=2) -> None:
    import tensorflow as tf

    from bench.classic import ClassicDream
    from dreamvideo.dream import edge_pad, fit_grid

    eng = _engine()
    w, h = size
    x = tf.constant(vtest_frame(w, h).astype(np.float32) / 127.5 - 1)
    pad, fold = edge_pad(eng.spec, h, w, 16, 1.0)
    pads, tiles = fit_grid(eng.spec, h, w, pad, tile)
    args = (
        x,
        tf.zeros((steps, 2), tf.int32),
        tf.constant(0.03),
        tf.constant(tiles),
        tf.constant(pads),
        tf.constant(fold),
        tf.zeros((1, 1, 3)),  # no temporal target, pull or step map: the plain ascent
        tf.zeros((1, 1, 1)),
        tf.ones((1, 1, 1)),
    )
    eng._ascend(*args)
    wall, agg = op_profile(lambda: eng._ascend(*args).numpy())
    _print_profile(f"profile engine {w}x{h} tile {tile}, {steps} steps", wall, agg)
    c = ClassicDream(eng)
    c.step(x, 0.03)

    def classic_steps():
        y = x
        for _ in range(steps):
            y = c.step(y, 0.03)
        y.numpy()

    wall, agg = op_profile(classic_steps)
    _print_profile(f"profile classic eager {w}x{h} untiled, {steps} steps", wall, agg)
    print("  (eager gradients of Conv2D compute the filter gradient too: Conv2DBackpropFilter is wasted work)")


def exp_flow(repeats: int) -> None:
    from bench.common import make_clip, read_clip
    from dreamvideo.flow import FlowEstimator, coherence

    for (w, h), small in (((640, 360), 320), ((1280, 720), 640)):
        fr = read_clip(make_clip(w, h, 6), None, 6)
        res = {}
        for _round in range(repeats):
            for ms in (None, small):
                est = FlowEstimator("dis-medium", max_side=ms)
                coherence(fr[1], fr[0], est)
                t = time.perf_counter()
                for i in range(1, len(fr)):
                    coherence(fr[i], fr[i - 1], est)
                res[ms] = min(res.get(ms, float("inf")), (time.perf_counter() - t) / (len(fr) - 1))
        print(
            f"flow {w}x{h} dis-medium coherence: full {res[None] * 1000:.0f} ms, max_side {small} "
            f"{res[small] * 1000:.0f} ms ({res[None] / res[small]:.2f}x)",
            flush=True,
        )


def exp_overlap(repeats: int) -> None:
    from bench.bench_video import run_pipelined, run_video
    from bench.common import make_clip

    w, h, n = 640, 360, 6
    clip = make_clip(w, h, n)
    s = default_settings(max_side=w)
    _engine()
    serial = run_video(clip, s, n, w, log=lambda m: None)
    pipe = run_pipelined(clip, s, n)
    ser = serial["mean_s"]
    print(
        f"overlap {w}x{h}, {n} frames: serial {ser:.2f} s/frame, render_video {pipe:.2f} s/frame "
        f"({ser / pipe:.2f}x); flow+decode share of serial {(serial['flow_share'] + serial['decode_share']) * 100:.1f}%"
    )


def exp_rss(repeats: int) -> None:
    for tile in (256, 512, 768, 1024):
        out = run_python(["bench/bench_4k.py", "--json", "--steps", "1", "--octaves", "1", "--tile", str(tile)])
        k = json.loads(out.strip().splitlines()[-1])
        print(
            f"rss 3840x2160 tile {tile:5d}: peak {k['peak_rss_bytes'] / GiB:.2f} GiB "
            f"(after load {k['rss_after_load_bytes'] / GiB:.2f}), one step {k['seconds']:.1f} s",
            flush=True,
        )


def fold_batchnorm(model):
    """A copy of ``model`` with every BatchNormalization that directly follows a Conv2D folded
    into that convolution (kernel scaled, bias added), the BN replaced by a pass-through of the same
    name. Inference-only arithmetic: conv(x) * g / sqrt(var + eps) + (beta - mean * g / sqrt(var + eps))."""
    import keras

    folds = {}  # conv name -> bn layer
    consumers: dict[str, int] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                op = t._keras_history.operation
                consumers[op.name] = consumers.get(op.name, 0) + 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            src = layer.input._keras_history.operation
            if (
                isinstance(src, keras.layers.Conv2D)
                and consumers.get(src.name) == 1
                and src.activation.__name__ == "linear"
            ):
                folds[src.name] = layer
    folded_bn = {bn.name for bn in folds.values()}

    class PassThrough(keras.layers.Layer):  # takes the BN's call arguments (training, mask)
        def call(self, inputs, training=None, mask=None):
            return inputs

    def clone(layer):
        cfg = layer.get_config()
        if layer.name in folds:
            cfg["use_bias"] = True
            return keras.layers.Conv2D.from_config(cfg)
        if layer.name in folded_bn:
            return PassThrough(name=layer.name)
        return layer.__class__.from_config(cfg)

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in folded_bn or not layer.weights:
            continue
        target = new.get_layer(layer.name)
        if layer.name in folds:
            bn = folds[layer.name]
            gamma = bn.gamma.numpy() if bn.scale else 1.0
            inv = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
            beta = bn.beta.numpy() if bn.center else 0.0
            w = layer.kernel.numpy() * inv
            b = (layer.bias.numpy() * inv if layer.use_bias else 0.0) + beta - bn.moving_mean.numpy() * inv
            target.set_weights([w.astype(np.float32), np.asarray(b, np.float32)])
        else:
            target.set_weights(layer.get_weights())
    return new, len(folds)


def exp_fold(repeats: int) -> None:
    """Batch norm folded into the convolutions (bench prototype) vs the engine as it is, in one process.

    Timed ABBA-style (the order alternates every repeat), best of the repeats: in one process the
    second engine built was seen to run at a different speed than the first, whichever it was."""
    import tensorflow as tf

    from bench.common import strength
    from dreamvideo.dream import DreamEngine, DreamParams
    from dreamvideo.model import LoadedModel

    eng = _engine()
    folded, n = fold_batchnorm(eng.feature_model)
    x = tf.constant(vtest_frame(320, 360)[None].astype(np.float32) / 127.5 - 1)
    ref = [np.asarray(a) for a in eng.feature_model(x, training=False)]
    got = [np.asarray(a) for a in folded(x, training=False)]
    rel = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(ref, got))
    print(f"fold: {n} batch norms folded; activations max rel diff {rel:.1e}", flush=True)
    engines = {
        "plain": eng,
        "folded": DreamEngine(LoadedModel(eng.spec, folded, eng.loaded.source), eng.layers, eng.loss_kind),
    }
    for w, h in ((640, 360), (1280, 720)):
        img = vtest_frame(w, h).astype(np.float32)
        p = DreamParams(steps=3, step_size=0.03, octaves=1, octave_scale=1.4, jitter=16, tile_size=512)
        for e in engines.values():
            e.dream(img, DreamParams(**{**p.__dict__, "steps": 1}))
        best = {k: float("inf") for k in engines}
        for r in range(repeats):
            for k in list(engines) if r % 2 == 0 else list(engines)[::-1]:
                t = time.perf_counter()
                engines[k].dream(img, p)
                best[k] = min(best[k], (time.perf_counter() - t) / 3)
        print(
            f"fold: step {w}x{h} plain {best['plain']:.3f} s, folded {best['folded']:.3f} s "
            f"({best['plain'] / best['folded']:.2f}x)",
            flush=True,
        )
    img = vtest_frame(640, 360).astype(np.float32)
    p = DreamParams(steps=6, step_size=0.03, octaves=2, octave_scale=1.4, jitter=16, tile_size=512)
    outs = {k: e.dream(img, p, seed=0) for k, e in engines.items()}
    a0 = eng.activation(img)
    g = {k: eng.activation(o) - a0 for k, o in outs.items()}
    print(
        f"fold: dream 640x360 (2 oct x 6 steps) activation gain plain {g['plain']:.4f}, folded {g['folded']:.4f}; "
        f"strength {strength(outs['plain'], img):.1f} vs {strength(outs['folded'], img):.1f}; "
        f"mean |plain - folded output| {np.abs(outs['plain'] - outs['folded']).mean():.2f}",
        flush=True,
    )


EXPERIMENTS = {
    "tiles": exp_tiles,
    "threads": exp_threads,
    "xla": exp_xla,
    "bf16": exp_bf16,
    "batch": exp_batch,
    "profile": exp_profile,
    "fold": exp_fold,
    "flow": exp_flow,
    "overlap": exp_overlap,
    "rss": exp_rss,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiments", nargs="*", default=[], help=", ".join(EXPERIMENTS))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    names = a.experiments or [n for n in EXPERIMENTS if n not in ("overlap", "rss")]
    for n in names:
        if n not in EXPERIMENTS:
            raise SystemExit(f"unknown experiment {n!r}: use one of {', '.join(EXPERIMENTS)}")
    for n in names:
        EXPERIMENTS[n](a.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
