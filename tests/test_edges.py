"""The frame's edges dream like its interior (the reflect padding of dream.edge_pad).

InceptionV3's valid-padded stem and its zero-padded convolutions under-dream the outer pixels of
whatever it is given; the engine pads each octave so that border falls outside the picture, and
for InceptionV3 folds the gradient landing on that margin back onto the pixels it reflects.
bench/bench_edges.py measures the same ratio at 640 px for every candidate padding rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from dreamvideo import dream
from dreamvideo.config import DreamConfig
from dreamvideo.dream import DreamParams, clear_cache, edge_pad, get_engine
from dreamvideo.model import get_spec


def band_ratio(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> float:
    """Mean |out - in| in the outer ``band`` px over that in the interior (``inner`` px from every edge)."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    edge = np.zeros(d.shape, bool)
    edge[:band], edge[-band:], edge[:, :band], edge[:, -band:] = True, True, True, True
    return float(d[edge].mean() / d[inner:-inner, inner:-inner].mean())


def _side_bands(out: np.ndarray, raw: np.ndarray, band: int = 8, inner: int = 48) -> dict[str, float]:
    """Mean |out - in| in each side's outer ``band`` px (corners left out) over the interior's."""
    d = np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean(axis=2)
    mid = d[inner:-inner, inner:-inner].mean()
    b = band
    return {
        "top": d[:b, b:-b].mean() / mid,
        "bottom": d[-b:, b:-b].mean() / mid,
        "left": d[b:-b, :b].mean() / mid,
        "right": d[b:-b, -b:].mean() / mid,
    }


def _today(spec, h: int, w: int, jitter: int, factor: float) -> tuple[int, bool]:
    """The rule every model had before the per-model one: max(jitter, 16) px, margin's gradient dropped."""
    return min(max(jitter, 16), min(h, w) - 1), False


def test_each_model_has_its_rule_and_other_models_keep_todays():
    # InceptionV3 pads only to its whole input sizes (fit_grid) and folds the margin's gradient,
    # EfficientNet-Lite0 pads 8 px without the fold, the rest keep 16 px; larger rolls scale the pad so
    # the wrap seam stays as far out; never the whole side.
    assert edge_pad(get_spec("inception_v3"), 360, 640, 16, 1.0) == (0, True)
    assert edge_pad(get_spec("efficientnet_lite0"), 360, 640, 16, 1.0) == (8, False)
    assert edge_pad(get_spec("efficientnet_lite0"), 360, 640, 32, 1.0) == (16, False)
    assert edge_pad(get_spec("efficientnet_lite0"), 12, 640, 32, 1.0) == (11, False)
    for name in ("vgg16", "mobilenet_v2"):
        spec = get_spec(name)
        for jitter in (0, 8, 16, 32):
            assert edge_pad(spec, 360, 640, jitter, 1.4) == _today(spec, 360, 640, jitter, 1.4)


def test_the_fold_adds_the_margins_gradient_to_the_outer_pixels_without_a_retrace(monkeypatch):
    # Tiny model, one octave, no roll, one step: folding adds the margin's gradient onto the outer 6 px
    # it reflects, so their step grows against the interior's (which only the std normalisation scales).
    rng = np.random.default_rng(3)
    img = rng.uniform(64, 192, (48, 64, 3)).astype(np.float32)  # no clipping at 0 or 255 in one step
    clear_cache()
    engine = get_engine(DreamConfig(model="tiny"))
    p = DreamParams(steps=1, step_size=0.05, octaves=1, octave_scale=1.4, jitter=0, tile_size=512)
    step = {}
    for fold in (False, True):
        monkeypatch.setattr(dream, "edge_pad", lambda spec, h, w, jitter, factor, fold=fold: (6, fold))
        step[fold] = np.abs(engine.dream(img, p, seed=0) - img).mean(axis=2)
    engine.dream(img[:40, :56], p, seed=0)  # another size, folded
    traces = engine.trace_count
    clear_cache()
    edge = np.zeros(img.shape[:2], bool)
    edge[1:7, 1:-1], edge[-7:-1, 1:-1], edge[1:-1, 1:7], edge[1:-1, -7:-1] = True, True, True, True
    inner = np.s_[12:-12, 12:-12]
    grow_edge = step[True][edge].mean() / step[False][edge].mean()
    grow_inner = step[True][inner].mean() / step[False][inner].mean()
    assert grow_edge > 1.3 * grow_inner, (grow_edge, grow_inner)
    assert traces == 1


def _butterfly(media, width: int = 320) -> np.ndarray:
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(media / "butterfly.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (width, width * 232 // 320), interpolation=cv2.INTER_AREA).astype(np.float32)


def _use_rule(monkeypatch, rule=None, grid: bool = True) -> None:
    """Dream with ``rule`` (dream.edge_pad's signature; None: the model's own) and with or without the grid."""
    if rule is not None:
        monkeypatch.setattr(dream, "edge_pad", rule)
    if not grid:
        monkeypatch.setattr(dream, "fit_grid", lambda spec, h, w, pad, tile: ((pad,) * 4, (tile, tile)))


@pytest.fixture
def inception(inception_weights):
    clear_cache()
    yield get_engine(DreamConfig(model="inception_v3", weights=str(inception_weights)))
    clear_cache()


_INCEPTION_TEST = DreamParams(steps=6, step_size=0.03, octaves=2, octave_scale=1.4, jitter=16, tile_size=512)


@pytest.mark.slow
def test_edges_dream_like_the_interior(media, inception, monkeypatch):
    img = _butterfly(media)
    padded = band_ratio(inception.dream(img, _INCEPTION_TEST, seed=0), img)
    _use_rule(monkeypatch, lambda spec, h, w, jitter, factor: (0, False), grid=False)
    bare = band_ratio(inception.dream(img, _INCEPTION_TEST, seed=0), img)
    # Measured (outer 8 px over the interior): 0.89 with InceptionV3's rule (grid, folded), 0.90 with 16 px
    # and no fold, 0.52 with no padding.
    assert padded > 0.75, (padded, bare)
    assert padded > bare + 0.2, (padded, bare)


@pytest.mark.slow
def test_inceptions_weakest_edge_dreams_more_than_with_todays_rule(media, inception, monkeypatch):
    # The edge a viewer notices is the weakest one: without the grid the bottom and right edges lose
    # rows and columns the network drops unseen, whatever the padding.
    img = _butterfly(media)
    ours = _side_bands(inception.dream(img, _INCEPTION_TEST, seed=0), img)
    traces = inception.trace_count
    _use_rule(monkeypatch, _today, grid=False)
    today = _side_bands(inception.dream(img, _INCEPTION_TEST, seed=0), img)
    retraced = inception.trace_count - traces
    # Measured: weakest side 0.82 against 0.61 here; at 640 px 0.62 / 0.74 / 0.41 against 0.48 / 0.62 / 0.31
    # (vtest, butterfly, starry_night; bench/bench_edges.py).
    assert min(ours.values()) > min(today.values()) + 0.1, (ours, today)
    assert retraced == 0, "a pad, grid or fold change retraced the step"


# --- the model's whole input sizes (dream.fit_grid) ---------------------------------------------------


@pytest.mark.parametrize("size", [(360, 640), (720, 1280), (257, 457), (131, 233), (2160, 3840), (75, 80)])
@pytest.mark.parametrize("pad", [0, 2, 10])
def test_inception_tiles_are_whole_input_sizes(size, pad):
    # InceptionV3 reads 11 + 16k px whole: every tile the padded octave is cut into has such a side, none
    # above the tile limit, the padding is at least the rule's on every side and never the whole side.
    h, w = size
    spec = get_spec("inception_v3")
    (top, bottom, left, right), (th, tw) = dream.fit_grid(spec, h, w, pad, 512)
    for side, lead, trail, t in ((h, top, bottom, th), (w, left, right, tw)):
        n = side + lead + trail
        assert min(lead, trail) >= pad and max(lead, trail) < side
        assert abs(lead - trail) <= 1  # the extra split between both sides
        assert t % 16 == 11 and t <= 512
        k = -(-n // t)
        assert n == k * t  # whole tiles: the graph's balanced tiles are exactly t
        assert n - (side + 2 * pad) < 16 * k  # no more than one grid step a tile


def test_models_that_read_every_size_get_the_rules_padding_and_square_tiles():
    for name in ("efficientnet_lite0", "vgg16", "mobilenet_v2"):
        assert dream.fit_grid(get_spec(name), 360, 640, 8, 512) == ((8, 8, 8, 8), (512, 512))


@pytest.mark.slow
def test_inceptions_bottom_and_right_edges_dream_like_its_top_and_left(media, inception, monkeypatch):
    # 320x232 is not a whole input size: without the grid the network drops the last rows and columns of
    # every tile unseen, and the bottom and right edges fall behind the top and left, even with 16 px of padding.
    img = _butterfly(media)
    sides = {True: _side_bands(inception.dream(img, _INCEPTION_TEST, seed=0), img)}
    _use_rule(monkeypatch, _today, grid=False)
    sides[False] = _side_bands(inception.dream(img, _INCEPTION_TEST, seed=0), img)
    ratio = {g: min(s["bottom"], s["right"]) / min(s["top"], s["left"]) for g, s in sides.items()}
    # Measured: weakest trailing / weakest leading side 0.88 with the grid, 0.65 with 16 px and no grid.
    assert ratio[True] > 0.75, sides
    assert ratio[True] > ratio[False] + 0.2, sides
