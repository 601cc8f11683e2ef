"""The frame's edges dream like its interior (the reflect padding of dream.edge_pad).

InceptionV3's valid-padded stem and its zero-padded convolutions under-dream the outer pixels of
whatever it is given; the engine pads each octave so that border falls outside the picture.
bench/bench_edges.py measures the same ratio at 640 px for every candidate padding rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from dreamvideo import dream
from dreamvideo.config import DreamConfig
from dreamvideo.dream import DreamParams, clear_cache, get_engine


def band_ratio(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> float:
    """Mean |out - in| in the outer ``band`` px over that in the interior (``inner`` px from every edge)."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    edge = np.zeros(d.shape, bool)
    edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
    return float(d[edge].mean() / d[inner:-inner, inner:-inner].mean())


@pytest.mark.slow
def test_edges_dream_like_the_interior(media, inception_weights, monkeypatch):
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(media / "butterfly.jpg")), cv2.COLOR_BGR2RGB)
    img = cv2.resize(rgb, (320, 232), interpolation=cv2.INTER_AREA).astype(np.float32)
    clear_cache()
    engine = get_engine(DreamConfig(model="inception_v3", weights=str(inception_weights)))
    p = DreamParams(steps=6, step_size=0.03, octaves=2, octave_scale=1.4, jitter=16, tile_size=512)
    padded = band_ratio(engine.dream(img, p, seed=0), img)
    monkeypatch.setattr(dream, "edge_pad", lambda h, w, jitter, factor: 0)
    bare = band_ratio(engine.dream(img, p, seed=0), img)
    clear_cache()
    # Measured: 0.91 padded against 0.53 with no padding (outer 8 px over the interior).
    assert padded > 0.75, (padded, bare)
    assert padded > bare + 0.2, (padded, bare)
