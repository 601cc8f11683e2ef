"""The tiny test model, importable on its own: conftest registers it here, and Ray workers started by the
cluster tests register it through DREAMVIDEO_WORKER_SETUP=tiny_model:register."""

from __future__ import annotations


def build_tiny(weights: str | None):
    """Three small conv layers with fixed seeded initialisers: a stand-in where weights do not matter."""
    import keras

    init = keras.initializers.GlorotUniform(seed=7)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init, name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", kernel_initializer=init, name="conv2")(
        x
    )
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init, name="conv3")(x)
    model = keras.Model(inp, x)
    if weights:
        model.load_weights(weights)
    return model


def register() -> None:
    """Register the model as "tiny" in this process's model registry."""
    from dreamvideo.model import ModelSpec
    from dreamvideo.model import register as add

    add(
        ModelSpec(
            name="tiny",
            description="test model (seeded random weights)",
            layers=("conv1", "conv2", "conv3"),
            default_layers=("conv2", "conv3"),
            min_side=16,
            build=build_tiny,
            to_input=lambda x: x,
            bundled=lambda: build_tiny(None),
            install_hint="(test model)",
        )
    )
