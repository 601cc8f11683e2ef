"""The precision setting: checked, recorded in the settings, and a bfloat16 dream as strong as float32's.

The model computes in bfloat16 while the image, the loss and the update stay float32; the tiny test
model stands in where the weights do not matter (its activations are judged by the float32 model).
"""

from __future__ import annotations

import numpy as np
import pytest

from dreamvideo.config import DreamConfig, Settings
from dreamvideo.dream import DreamParams, clear_cache, get_engine
from dreamvideo.errors import ConfigError


def _image(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 5.0) * np.cos(yy / 7.0)], axis=-1) * 200.0
    return np.clip(img + rng.normal(0.0, 8.0, img.shape), 0, 255).astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_engines():
    clear_cache()
    yield
    clear_cache()


def test_precision_is_checked_and_recorded():
    with pytest.raises(ConfigError, match="precision 'float64' is unknown.*: use one of float32, bfloat16, float16, auto"):
        Settings().replace(precision="float64")
    s = Settings().replace(precision="bfloat16")
    assert s.dream.precision == "bfloat16" and s.to_dict()["dream"]["precision"] == "bfloat16"
    assert s.digest() != Settings().digest()  # a resume never mixes precisions
    assert Settings().dream.precision == "float32"


def test_float16_needs_a_gpu():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: float16 is allowed here")
    with pytest.raises(ConfigError, match="float16 needs a GPU"):
        get_engine(DreamConfig(model="tiny", precision="float16"))


def test_bfloat16_dreams_as_strongly_as_float32():
    img = _image(96, 128)
    p = DreamParams(steps=8, step_size=0.03, octaves=2, octave_scale=1.4, jitter=4, tile_size=512)
    f32 = get_engine(DreamConfig(model="tiny"))
    b16 = get_engine(DreamConfig(model="tiny", precision="bfloat16"))
    assert b16 is not f32 and b16.precision == "bfloat16"
    assert str(b16.feature_model.outputs[0].dtype).endswith("bfloat16")  # the model really computes in bf16
    out32, out16 = f32.dream(img, p, seed=5), b16.dream(img, p, seed=5)
    assert out16.dtype == np.float32 and out16.shape == img.shape and np.isfinite(out16).all()
    before = f32.activation(img)
    gain32, gain16 = f32.activation(out32) - before, f32.activation(out16) - before  # judged in float32
    assert gain32 > 0
    assert abs(gain16 / gain32 - 1.0) < 0.05, (gain32, gain16)
    assert np.abs(out16 - img).mean() > 1.0  # it dreamed


def test_auto_picks_a_precision_and_says_why():
    engine = get_engine(DreamConfig(model="tiny", precision="auto"))
    assert engine.precision in ("float32", "bfloat16")
    notes = [n for n in engine.loaded.notes if n.startswith("precision auto: ")]
    assert len(notes) == 1 and notes[0].startswith(f"precision auto: {engine.precision}"), engine.loaded.notes
    assert get_engine(DreamConfig(model="tiny", precision="auto")) is engine  # probed once
    assert get_engine(DreamConfig(model="tiny", precision=engine.precision)) is engine
