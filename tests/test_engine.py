"""The dream engine's contracts that speed depends on (fast; the tiny test model, weights do not matter).

(a) the compiled step is traced once: new frame or octave sizes do not retrace it;
(b) tiled and untiled gradients dream alike (activation gain within a margin);
(c) the same seed gives the same output, another seed a different one;
(d) octave_sizes drops octaves whose short side would fall below the model's minimum.
"""

from __future__ import annotations

import numpy as np
import pytest

from dreamvideo.config import DreamConfig
from dreamvideo.dream import DreamParams, clear_cache, get_engine, octave_sizes


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, structured test image (gradients plus blobs), float32 0..255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 7.0) * np.cos(yy / 9.0)], axis=-1) * 200.0
    img += rng.normal(0.0, 8.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.float32)


def _params(**kw) -> DreamParams:
    base = dict(steps=3, step_size=0.03, octaves=2, octave_scale=1.4, jitter=4, tile_size=512)
    base.update(kw)
    return DreamParams(**base)


@pytest.fixture
def engine():
    clear_cache()
    eng = get_engine(DreamConfig(model="tiny"))
    yield eng
    clear_cache()


def test_new_sizes_do_not_retrace(engine):
    engine.dream(_image(64, 96), _params())  # warm-up: the one trace
    assert engine.trace_count == 1
    for h, w in [(120, 160), (90, 70), (33, 200), (128, 128)]:
        out = engine.dream(_image(h, w), _params(octaves=3))  # several octave sizes per frame too
        assert out.shape == (h, w, 3)
    engine.dream(_image(100, 150), _params(tile_size=64, steps=2))  # other tile size and step count
    assert engine.trace_count == 1


def test_tiled_and_untiled_agree_in_kind(engine):
    img = _image(120, 160)
    before = engine.activation(img)
    gains = {}
    for tile in (64, 512):
        out = engine.dream(img, _params(steps=6, octaves=1, tile_size=tile), seed=3)
        assert np.isfinite(out).all() and out.shape == img.shape
        gains[tile] = engine.activation(out) - before
    assert gains[64] > 0 and gains[512] > 0, gains
    ratio = gains[64] / gains[512]
    assert 0.5 < ratio < 2.0, gains


def test_seed_reproducible(engine):
    img = _image(80, 100)
    p = _params(jitter=8)
    a = engine.dream(img, p, seed=11)
    b = engine.dream(img, p, seed=11)
    c = engine.dream(img, p, seed=12)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_octave_sizes_drop_small_octaves():
    sizes = octave_sizes(120, 160, 4, 2.0, 50)  # 15x20 and 30x40 fall below 50 px
    assert sizes == [(60, 80), (120, 160)]
    assert octave_sizes(120, 160, 4, 2.0, 10) == [(15, 20), (30, 40), (60, 80), (120, 160)]
    # the full size is always kept, even when it is itself below the minimum
    assert octave_sizes(40, 60, 3, 1.5, 50) == [(40, 60)]
    # smallest first, ending at the frame's own size
    s = octave_sizes(360, 640, 4, 1.4, 75)
    assert s[-1] == (360, 640) and all(a[0] < b[0] for a, b in zip(s, s[1:]))
