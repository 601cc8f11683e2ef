"""Batch norms folded into the convolutions before them (model.fold_batch_norms): the same function, fewer ops."""

from __future__ import annotations

import numpy as np
import pytest

from dreamvideo.model import fold_batch_norms


def _model():
    """conv -> BN -> relu, depthwise -> BN, a conv feeding a BN and a skip (not foldable), a relu conv -> BN
    (not foldable), and a BN-followed conv that is a dream layer (kept); random batch-norm statistics."""
    import keras

    init = keras.initializers.GlorotUniform(seed=3)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, kernel_initializer=init, name="c1")(inp)
    x = keras.layers.BatchNormalization(scale=False, name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    y = keras.layers.Conv2D(16, 1, use_bias=True, kernel_initializer=init, name="c3")(x)
    z = keras.layers.BatchNormalization(name="bn3")(y)
    x = keras.layers.Add(name="skip")([y, z])  # c3's output is used twice: its BN stays
    x = keras.layers.Conv2D(8, 3, padding="valid", activation="relu", kernel_initializer=init, name="c4")(x)
    x = keras.layers.BatchNormalization(name="bn4")(x)  # after a relu: stays
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=True, kernel_initializer=init, name="c5")(x)
    x = keras.layers.BatchNormalization(name="bn5")(x)
    model = keras.Model(inp, x)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.3, n).astype(np.float32))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
        elif getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape[0]).astype(np.float32))
    return model


def _outputs(model, x):
    import keras

    names = ("r1", "bn2", "skip", "bn4", "c5", "bn5")
    return [np.asarray(a) for a in keras.Model(model.input, [model.get_layer(n).output for n in names])(x)]


def test_folding_keeps_every_output_and_folds_only_what_it_may():
    x = np.random.default_rng(1).uniform(-1, 1, (1, 37, 45, 3)).astype(np.float32)
    model = _model()
    before = _outputs(model, x)
    assert fold_batch_norms(model, keep=("c5",)) == 2  # bn1 (conv) and bn2 (depthwise)
    after = _outputs(model, x)
    for a, b in zip(before, after):
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(a).max()), np.abs(a - b).max()
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["bn1"] == kinds["bn2"] == "FoldedBatchNormalization"
    assert kinds["bn3"] == kinds["bn4"] == kinds["bn5"] == "BatchNormalization"
    assert fold_batch_norms(model) == 1  # c5 no longer kept: its BN folds now, bn1/bn2 are not folded twice
    again = _outputs(model, x)
    for i in (0, 1, 2, 3, 5):  # all but c5's own output, which now carries its batch norm's scale
        assert np.abs(before[i] - again[i]).max() <= 1e-5 * max(1.0, np.abs(before[i]).max())


def test_a_folded_batch_norm_holds_what_it_computes():
    # Its variables are the identity-plus-bias it now is: Keras' own batch-norm arithmetic on them agrees,
    # so the model's weights stay a consistent description of what it computes.
    import keras

    model = _model()
    fold_batch_norms(model)
    t = np.random.default_rng(2).normal(0, 2, (1, 5, 6, 8)).astype(np.float32)
    bn = model.get_layer("bn1")
    ours = np.asarray(bn.call(t))
    keras_own = np.asarray(keras.layers.BatchNormalization.call(bn, t, training=False))
    assert np.abs(ours - keras_own).max() <= 1e-5
    assert np.abs(ours - t).max() > 0.01  # it does add a bias


@pytest.mark.slow
def test_efficientnet_dreams_through_folded_batch_norms_with_the_same_activations():
    import keras

    from dreamvideo import efficientnet
    from dreamvideo.model import load_model

    loaded = load_model("efficientnet_lite0")
    layers = loaded.keras_model.layers
    assert sum(type(layer).__name__ == "FoldedBatchNormalization" for layer in layers) == 49  # every one
    plain = efficientnet.load_efficientnet_lite0(include_top=True)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 96, 128, 3)).astype(np.float32)
    names = loaded.spec.default_layers + ("logits",)
    got, ref = (keras.Model(m.input, [m.get_layer(n).output for n in names])(x) for m in (loaded.keras_model, plain))
    for a, b in zip(got, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
