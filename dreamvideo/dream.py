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

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import DreamConfig
from .errors import ConfigError
from .model import LoadedModel, check_layers, load_model


# Reflected context around the image while computing gradients, pixels (at least the largest roll).
# Measured on butterfly.jpg at 640 px with InceptionV3: without it the outer 8 px get 9.6/255 of
# dream against 17.0 inside (an undreamed frame); with 16 px, 14.3 against 15.9. It costs about 20%
# of a 640x360 first frame (bench/RESULTS.md: 16 px is a large share of the small octaves).
EDGE_PAD = 16


@dataclass(frozen=True)
class DreamParams:
    """The per-call knobs of a dream (a schedule may change them frame by frame).

    Each field is the DreamConfig setting of the same name (ranges in config.RULES): a new dream
    knob is a config field, its rule row, a field here, and the line of the ascent that uses it.
    """

    steps: int  # steps per octave, >= 0
    step_size: float  # in dream-space units ([-1, 1] range) per step
    octaves: int  # pyramid levels, >= 1
    octave_scale: float  # size ratio between levels, > 1
    jitter: int  # max roll in pixels, >= 0
    tile_size: int  # max tile side in pixels
    octave_detail: float = 1.0  # share of an octave's dream detail carried up to the next one, 0..1

    @classmethod
    def from_config(cls, cfg: DreamConfig, **override: Any) -> DreamParams:
        """The knobs of ``cfg`` (same-named fields), with ``override`` values that are not None."""
        base = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)}
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
        base = loaded.keras_model
        outputs = [base.get_layer(name).output for name in self.layers]
        # Cut at the deepest chosen layer: Keras only computes what these outputs depend on.
        self.feature_model = keras.Model(inputs=base.inputs, outputs=outputs)
        self.trace_count = 0  # incremented at trace time only: tests check that sizes do not retrace
        self._lock = threading.Lock()  # one ascent at a time per engine (the graph is not re-entrant)
        to_input = self.spec.to_input
        feature_model = self.feature_model
        min_side = self.spec.min_side

        def loss_fn(img: tf.Tensor) -> tf.Tensor:
            acts = feature_model(to_input(img[tf.newaxis]), training=False)
            if not isinstance(acts, (list, tuple)):
                acts = [acts]
            terms = [tf.reduce_mean(tf.square(a)) if loss == "meansquare" else tf.reduce_mean(a) for a in acts]
            return tf.add_n(terms)

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
            grads = tf.zeros_like(rolled)
            for iy in tf.range(ny):
                for ix in tf.range(nx):
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
                        value = loss_fn(piece)
                    g = tape.gradient(value, piece)
                    begin, end = tf.stack([y0, x0, 0]), tf.stack([y1, x1, 3])
                    grads = tf.raw_ops.TensorStridedSliceUpdate(
                        input=grads, begin=begin, end=end, strides=tf.ones([3], tf.int32),
                        value=grads[y0:y1, x0:x1] + g)
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
                    detail = cv2.resize(detail, (ow, oh), interpolation=cv2.INTER_LINEAR) * params.octave_detail
                    x = base + detail
                else:
                    x = base
                shifts = rng.integers(-params.jitter, params.jitter + 1, size=(params.steps, 2), dtype=np.int32)
                out = self._ascend(
                    self._tf.constant(x, dtype=self._tf.float32),
                    self._tf.constant(shifts),
                    self._tf.constant(params.step_size, dtype=self._tf.float32),
                    self._tf.constant(tile, dtype=self._tf.int32),
                    self._tf.constant(min(max(params.jitter, EDGE_PAD), min(oh, ow) - 1), dtype=self._tf.int32),
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
    """The engine for these settings, built once per process and kept across frames and jobs."""
    key = (cfg.model, cfg.weights, tuple(cfg.layers) if cfg.layers else None, cfg.loss)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            loaded = _load_cached(cfg.model, cfg.weights)
            engine = DreamEngine(loaded, check_layers(loaded.spec, cfg.layers), cfg.loss)
            _ENGINES[key] = engine
        return engine


_MODELS: dict[tuple, LoadedModel] = {}


def _load_cached(name: str | None, weights: str | None) -> LoadedModel:
    key = (name, weights)
    if key not in _MODELS:
        _MODELS[key] = load_model(name, weights)
    return _MODELS[key]


def clear_cache() -> None:
    """Forget built engines and models (tests use it to start from scratch)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()
        _MODELS.clear()


__all__ = ["DreamEngine", "DreamParams", "get_engine", "octave_sizes", "clear_cache"]
