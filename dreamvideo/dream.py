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

import contextlib
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import objective
from .config import DreamConfig
from .errors import ConfigError, InputError, ModelError
from .model import LoadedModel, ModelSpec, collector_paused, load_model

# The jitter (max roll, px) a model's ``edge_pad`` is stated for; larger rolls scale the pad with
# them, so the roll's wrap seam stays as far outside the picture as it was measured.
EDGE_PAD = 16


def edge_pad(spec: ModelSpec, height: int, width: int, jitter: int, factor: float) -> tuple[int, bool]:
    """(reflect padding in pixels a side, fold) of an octave of ``height`` x ``width``, 1/``factor`` of the frame.

    The model's ``edge_pad`` (px at a jitter up to EDGE_PAD, in proportion above) at every octave
    (``factor`` is unused, kept for rules that scale: the small octaves need their pad as much as the
    full one, bench/RESULTS.md), below the octave's short side; and the model's ``edge_fold``. A spec's
    16 px without the fold is the rule every model had before: max(jitter, 16).
    """
    pad = -(-spec.edge_pad * max(jitter, EDGE_PAD) // EDGE_PAD)  # ceil
    return min(pad, min(height, width) - 1), spec.edge_fold


def fit_grid(spec: ModelSpec, height: int, width: int, pad: int, tile: int) -> tuple[tuple[int, ...], tuple[int, int]]:
    """(reflect padding top, bottom, left, right; largest tile height, width) of an octave.

    ``pad`` px a side (``edge_pad``), grown where the model's ``edge_grid`` (m, r) asks: a network
    whose stride-2 stages are valid-padded (InceptionV3) reads only inputs of r + k*m px whole; of
    any other size it drops the last rows and columns of every tile unseen (no gradient, up to m - 1
    px). Each axis is padded to k tiles of such a size (k as few as ``tile`` allows), the extra
    split between both sides. Models without a grid get ``pad`` on every side and ``tile`` square.
    """
    if spec.edge_grid is None:
        return (pad, pad, pad, pad), (tile, tile)
    m, r = spec.edge_grid
    pads: list[int] = []
    tiles: list[int] = []
    for side in (height, width):
        n = side + 2 * pad
        k = -(-n // tile)
        while True:
            t = -(-n // k)
            t += (r - t) % m  # the smallest whole size >= t
            if t <= tile or -(-n // (k + 1)) < spec.min_side:  # more tiles would fall below the model's minimum
                break
            k += 1
        extra = k * t - n
        lead, trail = pad + extra // 2, pad + extra - extra // 2
        if max(lead, trail) >= side:  # reflect padding needs fewer than the side's pixels: tiny octaves
            lead = trail = min(pad, side - 1)
            t = tile
        pads += [lead, trail]
        tiles.append(t)
    return tuple(pads), (tiles[0], tiles[1])


# float16 keeps 5 exponent bits: the input gradient of a mean over ~1e6 activations (~1e-6 per
# element) underflows on its way back, so the float16 loss is scaled up and the gradient back down.
# bfloat16 has float32's exponent range and needs none.
FLOAT16_LOSS_SCALE = 1024.0


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
    guide_weight: float = 1.0  # blend toward the guide's objective, 0..1 (no effect without a guide)
    term_weights: tuple[float, ...] | None = None  # every objective term's weight for this call; None = the specs'

    @classmethod
    def from_config(cls, cfg: DreamConfig, **override: Any) -> DreamParams:
        """The knobs of ``cfg`` (same-named fields), with ``override`` values that are not None."""
        base = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls) if hasattr(cfg, f.name)}
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
        f = scale**i
        h, w = int(round(height / f)), int(round(width / f))
        if min(h, w) >= min_side or i == 0:
            sizes.append((h, w))
    return sizes


@contextlib.contextmanager
def graph_optimizer(spec: ModelSpec, gpu: bool) -> Any:
    """Run the ascent inside this with or without TensorFlow's graph optimiser, as ``spec`` says.

    Off only on CPUs (``gpu``: whether a GPU dreams): the max-pool kernels it is off for
    are oneDNN's, and on a GPU the optimiser's layout pass is what feeds cuDNN its preferred layout.
    TensorFlow optimises a function when a call first needs it with the options of that moment,
    and keeps one optimised copy per set of options, so the ascent is called with the same options
    every time (one copy, optimised once). The switch is TensorFlow's process-wide
    ``disable_meta_optimizer``, set for the call and put back after it; functions other threads
    call meanwhile are unaffected except where they are first optimised then.
    """
    if spec.graph_optimizer or gpu:
        yield
        return
    import tensorflow as tf

    before = bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False))
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


class DreamEngine:
    """A model cut at its deepest chosen layer, with a compiled multi-step ascent.

    Build once and reuse for every frame and every job (``get_engine`` caches engines).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        layers: tuple[str, ...] | None,
        loss: str = "mean",
        dream_class: int | None = None,
        guide: np.ndarray | None = None,
    ):
        import keras
        import tensorflow as tf

        self.loaded = loaded
        self.spec = loaded.spec
        self.terms = objective.plan(loaded.spec, layers, dream_class, loaded=loaded)  # what the ascent climbs
        self.layers = tuple(dict.fromkeys(t.layer for t in self.terms if t.kind != "class"))
        guided = objective.guide_layers(loaded.spec, self.terms) if guide is not None else ()
        self.loss_kind = loss
        self.precision = loaded.precision  # the model's compute dtype; image, loss and update stay float32
        loss_scale = FLOAT16_LOSS_SCALE if self.precision == "float16" else 1.0
        base = loaded.keras_model
        names = tuple(dict.fromkeys([*(t.layer for t in self.terms), *guided]))
        missing = [n for n in names if n not in {layer.name for layer in base.layers}]
        if missing:  # e.g. the classifier of a model loaded from a no-top --weights file
            raise ModelError(
                f"{self.spec.name} as loaded here has no layer {missing[0]!r}: "
                f"use its bundled weights, or drop dream_class"
            )
        outputs = [base.get_layer(name).output for name in names]
        # Cut at the deepest chosen layer: Keras only computes what these outputs depend on.
        self.feature_model = keras.Model(inputs=base.inputs, outputs=outputs)
        self._objective = objective.ObjectiveGraph(
            self.terms, names, {n: int(o.shape[-1]) for n, o in zip(names, outputs)}, guided, loss
        )
        self._guide = guide
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
            return self._objective(acts)  # the weighted sum of terms (objective.py)

        @tf.autograph.experimental.do_not_convert
        def tiled_gradient(
            img: tf.Tensor, shift: tf.Tensor, tile: tf.Tensor, pads: tf.Tensor, fold: tf.Tensor
        ) -> tf.Tensor:
            # Reflect-pad (edge_pad, fit_grid), so the roll's wrap seam and the network's own border
            # fall outside the picture: without it the frame's edges are under-dreamed.
            h0, w0 = tf.shape(img)[0], tf.shape(img)[1]
            paddings = tf.concat([tf.reshape(pads, [2, 2]), tf.zeros([1, 2], tf.int32)], 0)  # 3x2
            padded = tf.pad(img, paddings, mode="REFLECT")
            rolled = tf.roll(padded, shift=shift, axis=[0, 1])
            h, w = tf.shape(rolled)[0], tf.shape(rolled)[1]
            # Balanced tiles: n tiles of near-equal size, so no sliver below the model's minimum
            # (fit_grid sizes the padding so that they come out whole multiples where the model asks).
            ny = (h + tile[0] - 1) // tile[0]
            nx = (w + tile[1] - 1) // tile[1]
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
                    input=grads, begin=begin, end=end, strides=tf.ones([3], tf.int32), value=grads[y0:y1, x0:x1] + g
                )
                return k + 1, grads

            _, grads = tf.while_loop(lambda k, _g: k < ny * nx, add_tile, (tf.constant(0), tf.zeros_like(rolled)))
            grads = tf.roll(grads, shift=-shift, axis=[0, 1])  # (h0 + 2 pad) x (w0 + 2 pad) x 3
            # fold: the exact gradient of the reflect padding (each margin pixel's gradient added onto
            # the picture pixel it copies); else the margin's gradient is dropped. h0 x w0 x 3 either way.
            return tf.cond(
                fold,
                lambda: tf.raw_ops.MirrorPadGrad(input=grads, paddings=paddings, mode="REFLECT"),
                lambda: grads[pads[0] : pads[0] + h0, pads[2] : pads[2] + w0],
            )

        def ascend(
            img: tf.Tensor,
            shifts: tf.Tensor,
            step_size: tf.Tensor,
            tile: tf.Tensor,
            pads: tf.Tensor,
            fold: tf.Tensor,
            target: tf.Tensor,
            pull: tf.Tensor,
            step_map: tf.Tensor,
        ) -> tf.Tensor:
            self.trace_count += 1  # Python side effect: runs once per trace, not per call
            n = tf.shape(shifts)[0]

            def body(i: tf.Tensor, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                g = tiled_gradient(x, shifts[i], tile, pads, fold)
                g = g / (tf.math.reduce_std(g) + 1e-8)
                # Temporal term (video seeded frames; Ruder et al. 2016): a per-pixel step scale and a
                # quadratic pull toward ``target`` (the warped previous dream) of ``pull`` (0..1 of the
                # distance per step) where the flow is trusted. Plain dreams pass 1x1 maps: step_map 1,
                # pull 0, so this is the plain ascent (broadcast, no per-pixel cost worth measuring).
                x = x + step_size * step_map * g - pull * (x - target)
                x = tf.clip_by_value(x, -1.0, 1.0)
                return i + 1, x

            _, out = tf.while_loop(lambda i, x: i < n, body, (tf.constant(0), img))
            return out

        # autograph=False: the ascent is plain graph code (explicit while loops), so autograph's
        # rewrite of its source would only cost trace time (bench/bench_startup.py).
        self._ascend = tf.function(
            ascend,
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, None, 3], tf.float32),  # image in dream space, any size
                tf.TensorSpec([None, 2], tf.int32),  # one (dy, dx) roll per step
                tf.TensorSpec([], tf.float32),  # step size
                tf.TensorSpec([2], tf.int32),  # largest tile (height, width), pixels
                tf.TensorSpec([4], tf.int32),  # reflect padding top, bottom, left, right: 0 .. that side - 1
                tf.TensorSpec([], tf.bool),  # fold the padding's gradient back onto the picture (edge_pad)
                tf.TensorSpec([None, None, 3], tf.float32),  # temporal target in dream space (HxWx3 or 1x1x3)
                tf.TensorSpec([None, None, 1], tf.float32),  # pull toward it per step, 0..1 (HxWx1 or 1x1x1)
                tf.TensorSpec([None, None, 1], tf.float32),  # step scale per pixel, >= 0 (HxWx1 or 1x1x1)
            ],
        )
        self._loss_fn = loss_fn  # the same objective, uncompiled, for activation()
        self._tf = tf
        self._gpu = bool(tf.config.list_physical_devices("GPU"))  # where the ascent runs (graph_optimizer)

    # -- public ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def _set_objective(self, params: DreamParams, size: tuple[int, int]) -> None:
        """This call's term weights, and the guide's features for frames of ``size`` (h, w)."""
        self._objective.set_weights(params.guide_weight, params.term_weights)
        if self._guide is not None and self._objective.guide_size() != size:
            fitted = objective.fit_guide(self._guide, *size)
            acts = self.feature_model(
                self.spec.to_input(self._tf.constant(_to_dream_space(fitted))[None]), training=False
            )
            acts = acts if isinstance(acts, (list, tuple)) else [acts]
            self._objective.set_guide(dict(zip(self._objective.outputs, acts)), size)

    def features(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The chosen layers' activations (and the classifier's logits) of an HxWx3 0..255 image."""
        acts = self.feature_model(self.spec.to_input(self._tf.constant(_to_dream_space(image))[None]), training=False)
        acts = acts if isinstance(acts, (list, tuple)) else [acts]
        return {name: np.asarray(a)[0] for name, a in zip(self._objective.outputs, acts)}

    def activation(self, image: np.ndarray) -> float:
        """The dream loss (the objective at its specs' weights) of an HxWx3 0..255 image."""
        with self._lock:
            self._set_objective(DreamParams(0, 0.0, 1, 2.0, 0, 512, guide_weight=0.0), image.shape[:2])
            return float(self._loss_fn(self._tf.constant(_to_dream_space(image))))

    def dream(
        self, image: np.ndarray, params: DreamParams, seed: int = 0, temporal: Temporal | None = None
    ) -> np.ndarray:
        """Dream an HxWx3 float32 (or uint8) 0..255 RGB image; returns float32 0..255 of the same size.

        Octaves run smallest first; at each one the detail the dream added at the previous octave
        is upscaled and added to the downscaled source, so the dream grows coarse to fine.
        ``temporal`` (video seeded frames) adds the per-pixel step scale and the pull toward a target
        to every step (see :class:`Temporal`); None is the plain ascent.
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
        full_maps = _temporal_full(temporal)
        with self._lock:
            self._set_objective(params, (h, w))
            for oh, ow in sizes:
                base = src if (oh, ow) == (h, w) else cv2.resize(src, (ow, oh), interpolation=cv2.INTER_AREA)
                if detail is not None:
                    detail = cv2.resize(detail, (ow, oh), interpolation=cv2.INTER_LINEAR) * params.octave_detail
                    x = base + detail
                else:
                    x = base
                shifts = rng.integers(-params.jitter, params.jitter + 1, size=(params.steps, 2), dtype=np.int32)
                target, pull, step_map = _temporal_maps(full_maps, (oh, ow), (h, w))
                pad, fold = edge_pad(self.spec, oh, ow, params.jitter, h / oh)
                pads, tiles = fit_grid(self.spec, oh, ow, pad, tile)
                # The first call traces and optimises the graph: start-up work, done without GC passes.
                paused = collector_paused() if self.trace_count == 0 else contextlib.nullcontext()
                with paused, graph_optimizer(self.spec, self._gpu):
                    out = self._ascend(
                        self._tf.constant(x, dtype=self._tf.float32),
                        self._tf.constant(shifts),
                        self._tf.constant(params.step_size, dtype=self._tf.float32),
                        self._tf.constant(tiles, dtype=self._tf.int32),
                        self._tf.constant(pads, dtype=self._tf.int32),
                        self._tf.constant(fold, dtype=self._tf.bool),
                        self._tf.constant(target),
                        self._tf.constant(pull),
                        self._tf.constant(step_map),
                    ).numpy()
                detail = out - base
        return _from_dream_space(src + detail)


@dataclass(frozen=True)
class Temporal:
    """The temporal term of a seeded video frame, on the frame's full-size grid.

    ``target``: HxWx3 float32 0..255, the warped previous dream the step is pulled toward;
    ``pull``: HxW float32, fraction (0..1) of the distance to ``target`` removed per step (the
    temporal weight times the flow's reliability; 0 = free); ``step_scale``: HxW float32 >= 0, the
    step size per pixel relative to ``step_size`` (small where the carried dream is trusted, 1 on
    new content). Each octave uses them resized to its size.
    """

    target: np.ndarray
    pull: np.ndarray
    step_scale: np.ndarray


_NO_TARGET = np.zeros((1, 1, 3), np.float32)
_NO_PULL = np.zeros((1, 1, 1), np.float32)
_FULL_STEP = np.ones((1, 1, 1), np.float32)


def _temporal_full(temporal: Temporal | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(target in dream space HxWx3, pull HxW, step scale HxW), float32, at the frame's size; None for None.

    Converted once per frame and resized per octave: two frame-sized conversions fewer a warm frame.
    """
    if temporal is None:
        return None
    pull, step = (np.asarray(m, dtype=np.float32) for m in (temporal.pull, temporal.step_scale))
    return _to_dream_space(temporal.target), pull, step


def _temporal_maps(
    full_maps: tuple[np.ndarray, np.ndarray, np.ndarray] | None, size: tuple[int, int], full: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target in dream space, pull HxWx1, step scale HxWx1) at octave ``size`` (h, w) from
    ``_temporal_full``'s maps at ``full``; 1x1 maps for None (the plain ascent)."""
    import cv2

    if full_maps is None:
        return _NO_TARGET, _NO_PULL, _FULL_STEP
    target, pull, step = full_maps
    if size != full:
        dsize = (size[1], size[0])
        target, pull, step = (cv2.resize(m, dsize, interpolation=cv2.INTER_AREA) for m in (target, pull, step))
    return (
        np.ascontiguousarray(target, np.float32),
        np.clip(pull, 0.0, 1.0)[..., None],
        np.maximum(step, 0.0)[..., None],
    )


def _to_dream_space(image: np.ndarray) -> np.ndarray:
    """0..255 RGB (any dtype) -> float32 [-1, 1], a new array.

    In place on one copy: a frame-sized temporary less per call, which on 1280x720 frames inside a
    render (cold pages) cost ~15 ms each; the values are the same as ``image / 127.5 - 1``.
    """
    x = np.array(image, dtype=np.float32)
    x /= 127.5
    x -= 1.0
    return x


def _from_dream_space(x: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] -> float32 0..255 (clipped), a new array (in place on one copy, as above)."""
    y = np.asarray(x, dtype=np.float32) + np.float32(1.0)
    y *= 127.5
    return np.clip(y, 0.0, 255.0, out=y)


_ENGINES: dict[tuple, DreamEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(cfg: DreamConfig) -> DreamEngine:
    """The engine for these settings, built once per process and kept across frames and jobs.

    ``precision = "auto"`` builds the model in float32 and in bfloat16, times a short dream with
    each (once per model and layers, a few seconds) and keeps the faster one, with a note saying so.
    """
    with _ENGINES_LOCK:
        return _engine(cfg, cfg.precision)


def _base_key(cfg: DreamConfig) -> tuple:
    """What makes two engines different, precision aside."""
    return (cfg.model, cfg.weights, tuple(cfg.layers) if cfg.layers else None, cfg.loss, cfg.dream_class, cfg.guide)


def _engine(cfg: DreamConfig, precision: str) -> DreamEngine:
    base_key = _base_key(cfg)
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
        guide = read_guide(cfg.guide) if cfg.guide is not None else None  # a bad file fails before any model
        if cfg.dream_class is not None and cfg.model is not None:  # no classifier: say so before loading
            from .model import get_spec

            objective.plan(get_spec(cfg.model), cfg.layers, cfg.dream_class, cfg.weights)
        loaded = _load_cached(cfg.model, cfg.weights, precision)
        engine = DreamEngine(loaded, cfg.layers, cfg.loss, cfg.dream_class, guide)
        _ENGINES[key] = engine
    return engine


def read_guide(path: str) -> np.ndarray:
    """The guide image, HxWx3 uint8; InputError naming it as the guide when it is missing or not an image."""
    from .decode import read_image
    from .probe import check_input_file

    check_input_file(path, "guide")
    try:
        return read_image(path)
    except InputError as err:
        raise InputError(f"guide {err}") from None


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
        _ENGINES.pop((*_base_key(cfg), loser), None)
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
        for k in ("f32", "other") if i % 2 == 0 else ("other", "f32"):
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


__all__ = ["DreamEngine", "DreamParams", "Temporal", "get_engine", "octave_sizes", "clear_cache", "probe_speedup"]
