"""The classic-style baseline: DeepDream as the well-known TensorFlow snippet writes it.

An eager loop, one ``tf.GradientTape`` per step, no ``tf.function``, no tiles, no jitter, the
image itself resized between octaves, every video frame dreamed from its raw frame. Same model,
layers, loss, octave sizes, steps and step size as the engine, so the engine's speed-up is
measured at equal work per step (the FLOPs differ only by the engine's tile edges).
"""

from __future__ import annotations

import numpy as np


def plain_feature_model(engine):
    """The engine's layers cut from its model as built, batch norms and all (as a plain Keras script has
    it): where the engine dreams through folded batch norms (model.fold_batch_norms), the same model is
    built again without the fold, so the baseline does not borrow the engine's optimisation."""
    import keras

    from dreamvideo.model import load_model

    if not engine.spec.fold_norms:
        return engine.feature_model
    source = engine.loaded.source
    weights = source.path if source.kind in ("local", "installed", "cached") else None
    base = load_model(engine.spec.name, weights, engine.precision, fold=False).keras_model
    return keras.Model(base.input, [base.get_layer(n).output for n in engine.layers])


class ClassicDream:
    """Eager DeepDream on the engine's layers of the model as built (the same weights, layers and loss)."""

    def __init__(self, engine) -> None:
        import tensorflow as tf

        self.tf = tf
        self.model = plain_feature_model(engine)
        self.to_input = engine.spec.to_input
        self.loss_kind = engine.loss_kind
        self.min_side = engine.spec.min_side

    def calc_loss(self, img):
        tf = self.tf
        acts = self.model(self.to_input(img[tf.newaxis]), training=False)
        if not isinstance(acts, (list, tuple)):
            acts = [acts]
        if self.loss_kind == "meansquare":
            return tf.add_n([tf.reduce_mean(tf.square(a)) for a in acts])
        return tf.add_n([tf.reduce_mean(a) for a in acts])

    def step(self, img, step_size: float):
        tf = self.tf
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = self.calc_loss(img)
        g = tape.gradient(loss, img)
        g /= tf.math.reduce_std(g) + 1e-8
        return tf.clip_by_value(img + g * step_size, -1.0, 1.0)

    def dream(self, image: np.ndarray, steps: int, step_size: float, octaves: int, octave_scale: float) -> np.ndarray:
        """HxWx3 0..255 in, float32 0..255 out; octaves smallest first (the engine's sizes)."""
        from dreamvideo.dream import octave_sizes

        tf = self.tf
        h, w = image.shape[:2]
        img = tf.constant(np.asarray(image, np.float32) / 127.5 - 1.0)
        for oh, ow in octave_sizes(h, w, octaves, octave_scale, self.min_side):
            img = tf.image.resize(img, (oh, ow))
            for _ in range(steps):
                img = self.step(img, step_size)
        return np.clip((img.numpy() + 1.0) * 127.5, 0, 255).astype(np.float32)


def classic_video(engine, frames, steps: int, step_size: float, octaves: int, octave_scale: float):
    """Every frame dreamed from scratch, yields (seconds, dreamed float32 frame) per frame."""
    import time

    c = ClassicDream(engine)
    for raw in frames:
        t = time.perf_counter()
        out = c.dream(raw, steps, step_size, octaves, octave_scale)
        yield time.perf_counter() - t, out
