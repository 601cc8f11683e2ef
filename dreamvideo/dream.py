"""The dream: gradient ascent on the activations of chosen layers, over an octave pyramid.

Images come in and go out as HxWx3 float32 RGB in 0..255. Inside, the engine works in "dream
space" (RGB in [-1, 1]); each model maps that to its own input inside the compiled graph.

Per octave, all steps run in ONE compiled call (a tf.while_loop): each step rolls the image by a
seeded random shift (so tile seams and stride grids never stay in place), sums the gradients of the
loss over tiles of at most ``tile_size`` pixels (memory stays bounded on 4K frames), normalises
them by their standard deviation, and climbs. The function has a dynamic-shape input signature, so
a new octave or frame size never retraces it (``trace_count`` lets tests check that).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import DreamConfig
from .errors import ConfigError
from .model import LoadedModel, check_layers, load_model


# Reflected context around each octave while computing gradients, pixels a side (at least the
# largest roll). Every octave needs all of it: less at the small octaves, where it is the largest
# share of the pixels, under-dreams the edges of the finished frame (bench/bench_edges.py).
EDGE_PAD = 16


def edge_pad(height: int, width: int, jitter: int, factor: float) -> int:
    """Reflect padding, pixels a side, of an octave of ``height`` x ``width`` that is 1/``factor`` of the frame.

    The same at every octave (``factor`` is unused, kept for rules that scale): the roll's wrap seam
    then stays a pad's width outside the picture, and the padded array's own border 0 to 2 pads away.
    """
    return min(max(jitter, EDGE_PAD), min(height, width) - 1)


# float16 keeps 5 exponent bits: the input gradient of a mean over ~1e6 activations (~1e-6 per
# element) underflows on its way back, so the float16 loss is scaled up and the gradient back down.
# bfloat16 has float32's exponent range and needs none.
FLOAT16_LOSS_SCALE = 1024.0


# Flat settings a schedule or reaction may change per frame that are dream knobs (DreamParams fields).
DREAM_KEYS = ("steps", "step_size", "octaves", "octave_scale", "jitter")


def dream_values(values: dict[str, Any]) -> dict[str, Any]:
    """The dream knobs among a frame's per-frame setting values."""
    return {k: values[k] for k in DREAM_KEYS if k in values}


@dataclass(frozen=True)
class DreamParams:
    """The per-call knobs of a dream (a schedule may change them frame by frame)."""

    steps: int  # steps per octave, >= 0
    step_size: float  # in dream-space units ([-1, 1] range) per step
    octaves: int  # pyramid levels, >= 1
    octave_scale: float  # size ratio between levels, > 1
    jitter: int  # max roll in pixels, >= 0
    tile_size: int  # max tile side in pixels

    @classmethod
    def from_config(cls, cfg: DreamConfig, **override: Any) -> "DreamParams":
        base = dict(steps=cfg.steps, step_size=cfg.step_size, octaves=cfg.octaves,
                    octave_scale=cfg.octave_scale, jitter=cfg.jitter, tile_size=cfg.tile_size)
        base.update({k: v for k, v in override.items() if v is not None})
        base["steps"] = int(round(base["steps"]))
        base["octaves"] = int(round(base["octaves"]))
        return cls(**base)


def octave_sizes(height: int, width: int, octaves: int, scale: float, min_side: int) -> list[tuple[int, int]]:
    """(h, w) of each octave, smallest first, ending with (height, width).

    Octaves whose short side would fall below ``min_side`` are dropped (InceptionV3 has nothing
    left to see below ~75 px), so a small frame simply gets fewer octaves.
    """
    sizes = []
    for i in range(octaves - 1, -1, -1):
        f = scale ** i
        h, w = int(round(height / f)), int(round(width / f))
        if min(h, w) >= min_side or i == 0:
            sizes.append((h, w))
    return sizes


class DreamEngine:
    """A model cut at its deepest chosen layer, with a compiled multi-step ascent.

    Build once and reuse for every frame and every job (``get_engine`` caches engines).
    """

    def __init__(self, loaded: LoadedModel, layers: tuple[str, ...], loss: str = "mean"):
        import keras
        import tensorflow as tf

        self.loaded = loaded
        self.spec = loaded.spec
        self.layers = check_layers(loaded.spec, layers)
        self.loss_kind = loss
        self.precision = loaded.precision  # the model's compute dtype; image, loss and update stay float32
        loss_scale = FLOAT16_LOSS_SCALE if self.precision == "float16" else 1.0
        base = loaded.keras_model
        outputs = [base.get_layer(name).output for name in self.layers]
        # Cut at the deepest chosen layer: Keras only computes what these outputs depend on.
        self.feature_model = keras.Model(inputs=base.inputs, outputs=outputs)
        self.trace_count = 0  # incremented at trace time only: tests check that sizes do not retrace
        self._lock = threading.Lock()  # one ascent at a time per engine (the graph is not re-entrant)
        to_input = self.spec.to_input
        feature_model = self.feature_model
        min_side = self.spec.min_side

        # loss_fn and tiled_gradient are plain graph code (explicit tf.while_loop): autograph need not
        # rewrite them, which was about 40% of the one trace (bench/bench_startup.py).
        @tf.autograph.experimental.do_not_convert
        def loss_fn(img: tf.Tensor) -> tf.Tensor:
            acts = feature_model(to_input(img[tf.newaxis]), training=False)
            if not isinstance(acts, (list, tuple)):
                acts = [acts]
            acts = [tf.cast(a, tf.float32) for a in acts]  # a no-op in float32; the loss sums in float32
            terms = [tf.reduce_mean(tf.square(a)) if loss == "meansquare" else tf.reduce_mean(a) for a in acts]
            return tf.add_n(terms)

        @tf.autograph.experimental.do_not_convert
        def tiled_gradient(img: tf.Tensor, shift: tf.Tensor, tile: tf.Tensor, pad: tf.Tensor) -> tf.Tensor:
            # Reflect-pad by the largest roll, so the roll's wrap seam and the network's own border
            # fall outside the picture: without it the frame's edges are under-dreamed (EDGE_PAD).
            h0, w0 = tf.shape(img)[0], tf.shape(img)[1]
            padded = tf.pad(img, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
            rolled = tf.roll(padded, shift=shift, axis=[0, 1])
            h, w = tf.shape(rolled)[0], tf.shape(rolled)[1]
            # Balanced tiles: n tiles of near-equal size, so no sliver below the model's minimum.
            ny = (h + tile - 1) // tile
            nx = (w + tile - 1) // tile
            th = (h + ny - 1) // ny
            tw = (w + nx - 1) // nx

            def add_tile(k: tf.Tensor, grads: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                iy, ix = k // nx, k % nx  # row by row, as nested loops would
                y0, x0 = iy * th, ix * tw
                y0 = tf.minimum(y0, tf.maximum(h - tf.maximum(th, min_side), 0))
                x0 = tf.minimum(x0, tf.maximum(w - tf.maximum(tw, min_side), 0))
                y1 = tf.minimum(y0 + tf.maximum(th, min_side), h)
                x1 = tf.minimum(x0 + tf.maximum(tw, min_side), w)
                # The gradient of the tile alone, added into its place: the same sums as the
                # gradient with respect to the whole frame (zero outside the tile), without a
                # frame-sized temporary and a frame-sized add per tile (a 4K frame has 40 tiles).
                piece = rolled[y0:y1, x0:x1]
                with tf.GradientTape() as tape:
                    tape.watch(piece)
                    value = loss_fn(piece) if loss_scale == 1.0 else loss_fn(piece) * loss_scale
                g = tape.gradient(value, piece)  # float32: the gradient of the model's input cast
                if loss_scale != 1.0:  # float16: overflowed elements carry no direction, drop them
                    g = g / loss_scale
                    g = tf.where(tf.math.is_finite(g), g, tf.zeros_like(g))
                begin, end = tf.stack([y0, x0, 0]), tf.stack([y1, x1, 3])
                grads = tf.raw_ops.TensorStridedSliceUpdate(
                    input=grads, begin=begin, end=end, strides=tf.ones([3], tf.int32),
                    value=grads[y0:y1, x0:x1] + g)
                return k + 1, grads

            _, grads = tf.while_loop(lambda k, _g: k < ny * nx, add_tile, (tf.constant(0), tf.zeros_like(rolled)))
            return tf.roll(grads, shift=-shift, axis=[0, 1])[pad:pad + h0, pad:pad + w0]

        def ascend(img: tf.Tensor, shifts: tf.Tensor, step_size: tf.Tensor, tile: tf.Tensor, pad: tf.Tensor) -> tf.Tensor:
            self.trace_count += 1  # Python side effect: runs once per trace, not per call
            n = tf.shape(shifts)[0]

            def body(i: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                g = tiled_gradient(x, shifts[i], tile, pad)
                g = g / (tf.math.reduce_std(g) + 1e-8)
                x = tf.clip_by_value(x + step_size * g, -1.0, 1.0)
                return i + 1, x

            _, out = tf.while_loop(lambda i, x: i < n, body, (tf.constant(0), img))
            return out

        self._ascend = tf.function(
            ascend,
            input_signature=[
                tf.TensorSpec([None, None, 3], tf.float32),  # image in dream space, any size
                tf.TensorSpec([None, 2], tf.int32),  # one (dy, dx) roll per step
                tf.TensorSpec([], tf.float32),  # step size
                tf.TensorSpec([], tf.int32),  # tile side
                tf.TensorSpec([], tf.int32),  # reflect padding, pixels, > max roll and < the image side
            ],
        )
        self._loss_fn = loss_fn  # the same objective, uncompiled, for activation()
        self._tf = tf

    # -- public ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def activation(self, image: np.ndarray) -> float:
        """The dream loss (mean activation of the chosen layers) of an HxWx3 0..255 image."""
        return float(self._loss_fn(self._tf.constant(_to_dream_space(image))))

    def dream(self, image: np.ndarray, params: DreamParams, seed: int = 0) -> np.ndarray:
        """Dream an HxWx3 float32 (or uint8) 0..255 RGB image; returns float32 0..255 of the same size.

        Octaves run smallest first; at each one the detail the dream added at the previous octave
        is upscaled and added to the downscaled source, so the dream grows coarse to fine.
        """
        import cv2

        if params.steps <= 0 or params.step_size == 0:
            return np.asarray(image, dtype=np.float32).copy()
        src = _to_dream_space(image)
        h, w = src.shape[:2]
        if min(h, w) < self.spec.min_side:
            raise ConfigError(
                f"image is {w}x{h}, too small for {self.name}: use at least {self.spec.min_side} px a side"
            )
        rng = np.random.default_rng(seed)
        sizes = octave_sizes(h, w, params.octaves, params.octave_scale, self.spec.min_side)
        tile = max(int(params.tile_size), self.spec.min_side)
        detail: np.ndarray | None = None
        with self._lock:
            for oh, ow in sizes:
                base = src if (oh, ow) == (h, w) else cv2.resize(src, (ow, oh), interpolation=cv2.INTER_AREA)
                if detail is not None:
                    detail = cv2.resize(detail, (ow, oh), interpolation=cv2.INTER_LINEAR)
                    x = base + detail
                else:
                    x = base
                shifts = rng.integers(-params.jitter, params.jitter + 1, size=(params.steps, 2), dtype=np.int32)
                out = self._ascend(
                    self._tf.constant(x, dtype=self._tf.float32),
                    self._tf.constant(shifts),
                    self._tf.constant(params.step_size, dtype=self._tf.float32),
                    self._tf.constant(tile, dtype=self._tf.int32),
                    self._tf.constant(edge_pad(oh, ow, params.jitter, h / oh), dtype=self._tf.int32),
                ).numpy()
                detail = out - base
        return _from_dream_space(src + detail)


def _to_dream_space(image: np.ndarray) -> np.ndarray:
    """0..255 RGB (any dtype) -> float32 [-1, 1]."""
    return np.asarray(image, dtype=np.float32) / 127.5 - 1.0


def _from_dream_space(x: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] -> float32 0..255 (clipped)."""
    return np.clip((x + 1.0) * 127.5, 0.0, 255.0).astype(np.float32)


_ENGINES: dict[tuple, DreamEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(cfg: DreamConfig) -> DreamEngine:
    """The engine for these settings, built once per process and kept across frames and jobs.

    ``precision = "auto"`` builds the model in float32 and in bfloat16, times a short dream with
    each (once per model and layers, a few seconds) and keeps the faster one, with a note saying so.
    """
    with _ENGINES_LOCK:
        return _engine(cfg, cfg.precision)


def _engine(cfg: DreamConfig, precision: str) -> DreamEngine:
    base_key = (cfg.model, cfg.weights, tuple(cfg.layers) if cfg.layers else None, cfg.loss)
    if precision == "auto":
        if base_key not in _AUTO:
            _AUTO[base_key] = _probe_auto(cfg)
        precision = _AUTO[base_key]
    elif precision == "float16":
        from .model import import_tensorflow

        if not import_tensorflow().config.list_physical_devices("GPU"):
            raise ConfigError("precision float16 needs a GPU and none is visible: use precision=bfloat16 or float32")
    key = (*base_key, precision)
    engine = _ENGINES.get(key)
    if engine is None:
        loaded = _load_cached(cfg.model, cfg.weights, precision)
        engine = DreamEngine(loaded, check_layers(loaded.spec, cfg.layers), cfg.loss)
        _ENGINES[key] = engine
    return engine


_MODELS: dict[tuple, LoadedModel] = {}


def _load_cached(name: str | None, weights: str | None, precision: str = "float32") -> LoadedModel:
    key = (name, weights, precision)
    if key not in _MODELS:
        _MODELS[key] = load_model(name, weights, precision)
    return _MODELS[key]


# --- precision ------------------------------------------------------------------------------------

AUTO_MIN_SPEEDUP = 1.1  # auto picks bfloat16 only when its probe dream runs at least this much faster
_AUTO: dict[tuple, str] = {}  # (model, weights, layers, loss) -> the precision auto chose


def _probe_auto(cfg: DreamConfig) -> str:
    """auto's choice for these settings: bfloat16 where a short dream with it is faster, else float32."""
    from .model import import_tensorflow

    tf = import_tensorflow()
    f32 = _engine(cfg, "float32")
    if not tf.config.list_physical_devices("GPU") and not _cpu_has_bf16():
        note = "precision auto: float32 (this CPU has no AVX512_BF16 or AMX for bfloat16)"
        choice = "float32"
    else:
        speedup = probe_speedup(f32, _engine(cfg, "bfloat16"))
        choice = "bfloat16" if speedup >= AUTO_MIN_SPEEDUP else "float32"
        note = f"precision auto: {choice} for {f32.name} (bfloat16 dreamed {speedup:.2f}x as fast in a start-up probe)"
        loser = "float32" if choice == "bfloat16" else "bfloat16"  # free the model auto does not use
        _ENGINES.pop((cfg.model, cfg.weights, tuple(cfg.layers) if cfg.layers else None, cfg.loss, loser), None)
        _MODELS.pop((cfg.model, cfg.weights, loser), None)
    loaded = _load_cached(cfg.model, cfg.weights, choice)
    if note not in loaded.notes:
        loaded.notes.append(note)
    return choice


def _cpu_has_bf16() -> bool:
    """Whether /proc/cpuinfo lists a bfloat16 instruction set (elsewhere: assume yes and let the probe say)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return True
    return not flags or "avx512_bf16" in flags or "amx_bf16" in flags


def probe_speedup(f32: DreamEngine, other: DreamEngine, repeats: int = 3) -> float:
    """float32 seconds / ``other``'s seconds of the same short dream (224 px, 1 octave x 2 steps), best of each."""
    import time

    side = max(224, f32.spec.min_side)
    img = np.random.default_rng(0).uniform(0, 255, (side, side, 3)).astype(np.float32)
    p = DreamParams(steps=2, step_size=0.01, octaves=1, octave_scale=1.4, jitter=8, tile_size=512)
    best = {"f32": float("inf"), "other": float("inf")}
    engines = {"f32": f32, "other": other}
    for e in engines.values():
        e.dream(img, p)  # trace and warm up
    for i in range(repeats):  # interleaved, so others' load hits both alike
        for k in (("f32", "other") if i % 2 == 0 else ("other", "f32")):
            t = time.perf_counter()
            engines[k].dream(img, p)
            best[k] = min(best[k], time.perf_counter() - t)
    return best["f32"] / best["other"]


def clear_cache() -> None:
    """Forget built engines and models (tests use it to start from scratch)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()
        _MODELS.clear()
        _AUTO.clear()


__all__ = ["DreamEngine", "DreamParams", "get_engine", "octave_sizes", "clear_cache", "probe_speedup"]
