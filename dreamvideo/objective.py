"""What a dream climbs: a weighted sum of terms over a model's activations.

Terms, each with a weight:
  layer    the mean activation of a layer (or its mean square, ``loss = "meansquare"``): ``mixed3``
  channel  the mean activation of one channel of a layer: ``mixed4:97``
  class    the logit (pre-softmax score) of an ImageNet class, for models that carry their classifier
  guide    the guided dream of the original DeepDream notebook: each position of the frame's
           activations (a C-vector) is matched to the guide image's feature vector it has the largest
           dot product with, and that dot product is maximised. The match is position-invariant, so
           tiles, rolls and octaves need nothing special.

The layer spec is ``name[:channel][=weight]``, comma-separated: ``mixed4:97,mixed3=0.5``.
Total objective, per tile:  (1 - guide_weight) * sum_k weight_k * term_k + guide_weight * guide,
or just the sum without a guide image. Weights and the guide's features are held in tf.Variables
read by the compiled step, so a schedule changing guide_weight per frame, or a gallery switching
terms on and off, never retraces it.

Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, ModelError

_ENTRY = re.compile(r"^(?P<layer>[A-Za-z_][\w./-]*)(?::(?P<channel>\d{1,6}))?(?:=(?P<weight>[-+0-9.eE]{1,32}))?$")
MAX_WEIGHT = 100.0  # |weight| of a term, so a typo cannot make one term drown every other by 1e9
GUIDE_SIDE = 512  # pixels: the guide image is fitted to the frame, at most this long a side (cost)
GUIDE_POSITIONS = 1024  # guide feature vectors kept per layer (area-resized map), bounds the N x M match


def parse_layer_spec(entry: str) -> tuple[str, int | None, float]:
    """'mixed4:97=0.5' -> ('mixed4', 97, 0.5); 'mixed3' -> ('mixed3', None, 1.0). ConfigError otherwise."""
    text = entry.strip()
    m = _ENTRY.match(text)
    form = "use NAME, NAME:CHANNEL or NAME=WEIGHT, e.g. mixed4:97,mixed3=0.5"
    if m is None:
        raise ConfigError(f"layers entry {text[:60]!r} is not a layer spec: {form}")
    weight = 1.0
    if m["weight"] is not None:
        try:
            weight = float(m["weight"])
        except ValueError:
            raise ConfigError(f"layers entry {text[:60]!r} has a weight that is not a number: {form}") from None
        if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
            raise ConfigError(f"layers entry {text[:60]!r}: the weight must be within -{MAX_WEIGHT:g}..{MAX_WEIGHT:g}")
    channel = int(m["channel"]) if m["channel"] is not None else None
    return m["layer"], channel, weight


@dataclass(frozen=True)
class Term:
    """One weighted term of the objective."""

    kind: str  # "layer", "channel" or "class"
    layer: str  # the model layer whose output it reads (the classifier's logits layer for "class")
    index: int | None  # the channel (kind "channel") or ImageNet class (kind "class"); None for "layer"
    weight: float  # factor on the term, -100..100

    @property
    def label(self) -> str:
        """The spec a user types for it: 'mixed4:97', 'mixed3=0.5', 'class 323'."""
        if self.kind == "class":
            return f"class {self.index}"
        text = self.layer + (f":{self.index}" if self.kind == "channel" else "")
        return text + (f"={self.weight:g}" if self.weight != 1.0 else "")


def class_models() -> list[str]:
    """Registered models that can carry their ImageNet classifier (can dream toward a class), those
    that always do first (the bundled EfficientNet-Lite0), then those that need their full weights."""
    from .model import get_spec, model_names

    specs = [get_spec(n) for n in model_names()]
    return [s.name for s in specs if s.class_layer and s.classifier_in is None] + [
        s.name for s in specs if s.class_layer and s.classifier_in is not None
    ]


def plan(
    spec: Any,
    layers: tuple[str, ...] | None,
    dream_class: int | None = None,
    weights: str | None = None,
    *,
    loaded: Any = None,
) -> tuple[Term, ...]:
    """The terms for a model spec: the layer specs (the model's defaults when None and no class is
    asked), then the class logit when ``dream_class`` is set. ModelError for unknown layers or a
    model without its classifier (naming those with one). Whether the model has its classifier is
    read from ``loaded`` (a model.LoadedModel) when given, else from the weights file it would load
    (``weights``: the --weights file, or None for the usual search; see model.classifier_layer)."""
    from .model import check_layers, classifier_layer

    entries = tuple(layers) if layers else (() if dream_class is not None else tuple(spec.default_layers))
    parsed = [parse_layer_spec(e) for e in entries]
    if parsed:
        check_layers(spec, tuple(name for name, _, _ in parsed))
    terms = [Term("channel" if ch is not None else "layer", name, ch, w) for name, ch, w in parsed]
    if dream_class is not None:
        if loaded is not None:
            names = {layer.name for layer in loaded.keras_model.layers}
            layer = spec.class_layer if spec.class_layer in names else None
        else:
            layer = classifier_layer(spec, weights)
        if layer is None:
            raise ModelError(_no_classifier(spec, weights, loaded))
        terms.append(Term("class", layer, int(dream_class), 1.0))
    return tuple(terms)


def _no_classifier(spec: Any, weights: str | None, loaded: Any) -> str:
    """The one-line refusal of dream_class for a model without its classifier, with the fix."""
    from .model import find_weights, get_spec

    always = [n for n in class_models() if n != spec.name]
    other = f"--model {always[0]}" if always else "another model"
    if spec.class_layer and spec.classifier_in is not None:  # the classifier comes with the full weights only
        source = loaded.source if loaded is not None else find_weights(spec, weights)
        have = f"the weights here ({source.detail}) have none" if source.path is not None else "no weights file here"
        full = f", Keras' {spec.full_file}" if spec.full_file else ""
        return (
            f"dream_class needs {spec.name}'s ImageNet classifier, which comes with its full weights only and "
            f"{have}: pass --weights FILE (or `dreamvideo models install {spec.name} FILE`) with the full "
            f"weights{full}, or use {other}"
        )
    able = ", ".join(n + (" with its full weights" if get_spec(n).classifier_in else "") for n in class_models())
    return (
        f"dream_class needs a model that carries its ImageNet classifier, and {spec.name} here "
        f"does not: use {other} (models with one: {able or 'none registered'})"
    )


def guide_layers(spec: Any, terms: tuple[Term, ...]) -> tuple[str, ...]:
    """Layers a guide is matched at: those of the layer and channel terms, else the model's defaults."""
    names = tuple(dict.fromkeys(t.layer for t in terms if t.kind != "class"))
    return names or tuple(spec.default_layers)


def fit_guide(guide: np.ndarray, height: int, width: int) -> np.ndarray:
    """The guide image scaled to cover (width, height) and centre-cropped, then shrunk so its longer
    side is at most GUIDE_SIDE: HxWx3 float32 0..255 (features at the frame's scale, bounded cost)."""
    import cv2

    scale = min(1.0, GUIDE_SIDE / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    gh, gw = guide.shape[:2]
    cover = max(w / gw, h / gh)
    nw, nh = max(w, round(gw * cover)), max(h, round(gh * cover))
    interp = cv2.INTER_AREA if cover < 1 else cv2.INTER_CUBIC
    big = cv2.resize(np.asarray(guide, np.float32), (nw, nh), interpolation=interp)
    y, x = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(big[y : y + h, x : x + w])


class ObjectiveGraph:
    """The objective in TensorFlow: built once per engine, called inside its compiled step.

    ``outputs`` names the feature model's outputs in order; ``channels`` maps each to its width.
    """

    def __init__(
        self,
        terms: tuple[Term, ...],
        outputs: tuple[str, ...],
        channels: dict[str, int],
        guided: tuple[str, ...],
        loss: str,
    ):
        import tensorflow as tf

        self.terms, self.outputs, self.guided, self.loss = terms, outputs, guided, loss
        for t in terms:
            width = channels[t.layer]
            if t.index is not None and not 0 <= t.index < width:
                what = "channel" if t.kind == "channel" else "class"
                raise ModelError(
                    f"{what} {t.index} of {t.layer} does not exist: {t.layer} has {width} "
                    f"{'channels' if t.kind == 'channel' else 'classes'}, use 0..{width - 1}"
                )
        self.default_weights = np.array([t.weight for t in terms], np.float32)
        self.weights = tf.Variable(self.default_weights, trainable=False, name="term_weights")
        self.guide_weight = tf.Variable(0.0, trainable=False, name="guide_weight")
        # One [M, C] matrix of guide feature vectors per guided layer; M changes with the frame size.
        self.guide = {
            name: tf.Variable(
                tf.zeros([1, channels[name]]),
                trainable=False,
                shape=tf.TensorShape([None, channels[name]]),
                name=f"guide_{name}",
            )
            for name in guided
        }
        self._guide_size: tuple[int, int] | None = None

    def __call__(self, acts: list[Any]) -> Any:
        """The objective of one tile's activations (a scalar tensor)."""
        import tensorflow as tf

        by_name = {name: tf.cast(a, tf.float32) for name, a in zip(self.outputs, acts)}

        def reduce(x: Any) -> Any:
            return tf.reduce_mean(tf.square(x)) if self.loss == "meansquare" else tf.reduce_mean(x)

        values = []
        for t in self.terms:
            a = by_name[t.layer]
            if t.kind == "layer":
                values.append(reduce(a))
            elif t.kind == "channel":
                values.append(reduce(a[..., t.index]))
            else:  # class: logits (1, classes)
                values.append(tf.reduce_mean(a[..., t.index]))
        total = tf.reduce_sum(self.weights * tf.stack(values)) if values else tf.constant(0.0)
        if not self.guided:
            return total
        guide = []
        for name in self.guided:
            a = by_name[name]
            x = tf.reshape(a, [-1, tf.shape(a)[-1]])  # N x C, the tile's positions
            dots = tf.matmul(x, self.guide[name], transpose_b=True)  # N x M
            guide.append(tf.reduce_mean(tf.reduce_max(dots, axis=1)) / tf.cast(tf.shape(a)[-1], tf.float32))
        return (1.0 - self.guide_weight) * total + self.guide_weight * tf.add_n(guide)

    def set_guide(self, features: dict[str, Any], size: tuple[int, int]) -> None:
        """Load the guide's activations (name -> 1xHxWxC) for frames of ``size`` (h, w)."""
        import tensorflow as tf

        for name in self.guided:
            a = tf.cast(features[name], tf.float32)[0]
            h, w = int(a.shape[0]), int(a.shape[1])
            shrink = math.sqrt(GUIDE_POSITIONS / max(h * w, 1))
            if shrink < 1:
                a = tf.image.resize(a, (max(1, int(h * shrink)), max(1, int(w * shrink))), method="area")
            y = tf.reshape(a, [-1, a.shape[-1]])
            # Scale so the mean |entry| is 1: the guide term's size then matches a layer mean's and
            # guide_weight blends two objectives of the same scale.
            self.guide[name].assign(y / (tf.reduce_mean(tf.abs(y)) + 1e-6))
        self._guide_size = size

    def guide_size(self) -> tuple[int, int] | None:
        """The frame size (h, w) the loaded guide features were computed for."""
        return self._guide_size

    def set_weights(self, guide_weight: float, term_weights: tuple[float, ...] | None) -> None:
        """This call's weights: the guide's blend (0..1) and, when given, every term's (gallery)."""
        w = self.default_weights if term_weights is None else np.asarray(term_weights, np.float32)
        if w.shape != self.default_weights.shape:
            raise ValueError(f"{len(self.terms)} term weights expected, got {w.shape}")
        self.weights.assign(w)
        self.guide_weight.assign(float(guide_weight) if self.guided else 0.0)


def layer_channels(spec: Any) -> dict[str, int]:
    """Each dreamable layer's channel count, from the model built without weights (no download)."""
    from .model import import_tensorflow

    import_tensorflow()
    model = spec.build(None)
    return {name: int(model.get_layer(name).output.shape[-1]) for name in spec.layers}


__all__ = [
    "Term",
    "parse_layer_spec",
    "plan",
    "guide_layers",
    "fit_guide",
    "class_models",
    "ObjectiveGraph",
    "layer_channels",
    "MAX_WEIGHT",
]
