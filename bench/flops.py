"""FLOPs of a dream step, counted from the model's layers, and this machine's float32 limit.

Counting (documented in bench/RESULTS.md):
  * forward, per Conv2D / DepthwiseConv2D / Dense layer of the cut model (input up to the deepest
    dream layer; Keras' cut model holds exactly the layers the chosen outputs depend on):
        2 * H_out * W_out * k_h * k_w * C_in * C_out / groups   (a multiply-add = 2 FLOPs)
    (DepthwiseConv2D: 2 * H_out * W_out * k_h * k_w * C_in * multiplier; Dense on a feature map:
    2 * positions * C_in * C_out);
  * backward: the step needs the gradient with respect to the INPUT IMAGE only. Per layer that is
    dX, a transposed convolution with exactly the forward's multiply-adds, so backward = 1 x forward.
    The weight gradients (dW, another 1 x forward) are NOT needed and not counted: a compiled
    step prunes them; an eager tape computes them anyway (wasted work of the classic loop);
  * one step = sum over the step's tiles (bench.common.engine_tiles: the octave reflect-padded by
    dream.edge_pad's rule for the model, then tiled with dream.py's arithmetic) of forward + dX = 2 x forward FLOPs.
    Elementwise work (batch norm, ReLU, pooling, concat, the roll/normalise/clip of the step) is not
    counted: it is memory-bound and small in FLOPs.
"""

from __future__ import annotations

import os
import time

import numpy as np

CONV_KINDS = ("Conv2D", "DepthwiseConv2D", "Dense", "SeparableConv2D")


def _conv_layers(model):
    return [l for l in model.layers if type(l).__name__ in CONV_KINDS]


_PROBES: dict[int, object] = {}


def layer_flops(model, height: int, width: int) -> list[tuple[str, str, float]]:
    """(layer name, kind, forward FLOPs) of each conv/dense layer of ``model`` on one HxW image."""
    import keras

    convs = _conv_layers(model)
    probe = _PROBES.get(id(model))
    if probe is None:
        probe = keras.Model(model.inputs, [l.output for l in convs])
        _PROBES[id(model)] = probe
    specs = probe.compute_output_spec(keras.KerasTensor((1, height, width, 3)))
    if not isinstance(specs, (list, tuple)):
        specs = [specs]
    out = []
    for layer, spec in zip(convs, specs):
        shape = spec.shape
        positions = float(np.prod([d for d in shape[1:-1]]))
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin_g, cout = layer.kernel.shape  # cin_g = C_in / groups
            f = 2.0 * positions * kh * kw * cin_g * cout
        elif kind == "DepthwiseConv2D":
            kh, kw, cin, mult = layer.kernel.shape
            f = 2.0 * positions * kh * kw * cin * mult
        elif kind == "SeparableConv2D":
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            _, _, cm, cout = layer.pointwise_kernel.shape
            f = 2.0 * positions * (kh * kw * cin * mult + cm * cout)  # depthwise at output stride, then 1x1
        else:  # Dense
            cin, cout = layer.kernel.shape
            f = 2.0 * positions * cin * cout
        out.append((layer.name, kind, f))
    return out


def forward_flops(model, height: int, width: int) -> float:
    return sum(f for _, _, f in layer_flops(model, height, width))


def step_flops(model, tiles: list[tuple[int, int]]) -> dict[str, float]:
    """FLOPs of one dream step over these (h, w) tiles: forward, dX backward, total (= 2 x forward)."""
    fwd = sum(forward_flops(model, h, w) for h, w in tiles)
    return {"forward": fwd, "backward_dx": fwd, "total": 2.0 * fwd, "unneeded_dw": fwd}


def matmul_limit(n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s of a large float32 matmul with numpy (its BLAS) and with TensorFlow; best of ``repeats``."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n**3

    cores = os.cpu_count() or 1

    def best(fn) -> tuple[float, float]:
        fn()  # warm-up
        times, cpus = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn()
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        return flops / min(times) / 1e9, flops / (min(cpus) / cores) / 1e9

    np_gf, np_cpu = best(lambda: a @ b)
    ta, tb = tf.constant(a), tf.constant(b)
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    tf_gf, tf_cpu = best(lambda: mm(ta, tb).numpy())
    return {
        "numpy_gflops": np_gf,
        "tf_gflops": tf_gf,
        "limit_gflops": max(np_gf, tf_gf),
        "numpy_gflops_cpu": np_cpu,
        "tf_gflops_cpu": tf_cpu,
        "limit_gflops_cpu": max(np_cpu, tf_cpu),
    }


def measure_step_rate(engine, image: np.ndarray, tile: int, steps: int = 4, repeats: int = 3) -> dict[str, float]:
    """Achieved FLOP rate of the engine's step at the image's size (one octave, ``steps`` fused steps),
    and of the forward pass alone over the same tiles (compiled), best of ``repeats`` each."""
    import tensorflow as tf

    from bench.common import edge_pad, engine_tiles
    from dreamvideo.dream import DreamParams

    cores = os.cpu_count() or 1
    h, w = image.shape[:2]
    tl = engine_tiles(h, w, tile, engine.spec.min_side, 16, engine.spec)  # the engine's padded tiles (jitter 16)
    fl = step_flops(engine.feature_model, tl)
    p = DreamParams(steps=steps, step_size=0.03, octaves=1, octave_scale=1.4, jitter=16, tile_size=tile)
    engine.dream(image, DreamParams(**{**p.__dict__, "steps": 1}))  # warm-up
    step_s, step_cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        engine.dream(image, p)
        step_s.append((time.perf_counter() - t) / steps)
        step_cpu.append((time.process_time() - c) / steps)
    fm, to_input = engine.feature_model, engine.spec.to_input
    fwd = tf.function(lambda x: fm(to_input(x), training=False), reduce_retracing=True)
    xs = [tf.constant(np.zeros((1, th, tw, 3), np.float32)) for th, tw in tl]
    for x in xs:
        fwd(x)
    fwd_s = []
    for _ in range(repeats):
        t = time.perf_counter()
        for x in xs:
            r = fwd(x)
        _ = [np.asarray(o) for o in (r if isinstance(r, (list, tuple)) else [r])]
        fwd_s.append(time.perf_counter() - t)
    s, f = min(step_s), min(fwd_s)
    return {
        "tiles": len(tl),
        "tile_shape": f"{tl[0][1]}x{tl[0][0]}",
        "pad": edge_pad(h, w, 16, engine.spec),
        "step_gflop": fl["total"] / 1e9,
        "forward_gflop": fl["forward"] / 1e9,
        "step_s": s,
        "forward_s": f,
        "step_gflops": fl["total"] / s / 1e9,
        "forward_gflops": fl["forward"] / f / 1e9,
        "backward_s": max(s - f, 1e-9),
        "backward_gflops": fl["backward_dx"] / max(s - f, 1e-9) / 1e9,
        "cores": cores,
        "step_cpu_s": min(step_cpu),
        "step_gflops_cpu": fl["total"] / (min(step_cpu) / cores) / 1e9,
    }
