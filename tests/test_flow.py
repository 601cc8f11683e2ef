"""Flow stage: estimation accuracy, warp semantics, occlusion mask, scene cuts, errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from dreamvideo.config import VideoConfig
from dreamvideo.errors import ConfigError
from dreamvideo.flow import (
    FLOW_METHODS,
    FlowEstimator,
    coherence,
    is_scene_cut,
    occlusion_mask,
    warp,
)
from helpers import MEDIA, REPO, need


def read_rgb(name: str) -> np.ndarray:
    img = cv2.imread(str(need(MEDIA / name)), cv2.IMREAD_COLOR)
    assert img is not None, name
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by (dx, dy): out(x) = img(x - d)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)


# -- pure functions, no media ---------------------------------------------------------------------


def test_warp_samples_at_x_plus_flow_and_keeps_dtype():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 2.0  # sample two pixels to the right
    flow[..., 1] = -1.0  # and one up
    out = warp(img, flow)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out[1:, :-2], img[:-1, 2:])
    f = warp(img.astype(np.float32), flow)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f[1:, :-2], img[:-1, 2:])
    # borders replicate instead of going black
    np.testing.assert_array_equal(out[0, :-2], img[0, 2:])
    # 2-D, single-channel and many-channel images keep their shape
    assert warp(img[..., 0], flow).shape == (20, 30)
    assert warp(img[..., :1].astype(np.float32), flow).shape == (20, 30, 1)
    many = rng.random((20, 30, 6), dtype=np.float32)
    np.testing.assert_allclose(warp(many, flow)[1:, :-2], many[:-1, 2:])


def test_occlusion_mask_exact_flows_flag_disocclusion_only():
    """Square of 20 px moving 6 px right over a static background, with exact flows."""
    h, w, x0, y0, s, d = 60, 80, 20, 20, 20, 6
    bw = np.zeros((h, w, 2), np.float32)  # t -> t-1, on frame t: square now at x0+d
    bw[y0 : y0 + s, x0 + d : x0 + d + s, 0] = -d
    fw = np.zeros((h, w, 2), np.float32)  # t-1 -> t, on frame t-1: square at x0
    fw[y0 : y0 + s, x0 : x0 + s, 0] = d
    hard = occlusion_mask(bw, fw, soften=False)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    # the uncovered strip: background at t, square at t-1 -> inconsistent
    assert (hard[y0 + 1 : y0 + s - 1, x0 + 1 : x0 + d - 1] == 0).all()
    # background far from the square and the square's interior are reliable
    assert (hard[:, 60:] == 1).all() and (hard[:10] == 1).all()
    assert (hard[y0 + 3 : y0 + s - 3, x0 + d + 3 : x0 + d + s - 3] == 1).all()
    soft = occlusion_mask(bw, fw)
    assert soft.dtype == np.float32 and soft.shape == (h, w)
    assert soft.min() >= 0.0 and soft.max() <= 1.0
    assert (soft[y0 + 2 : y0 + s - 2, x0 + 1 : x0 + d - 1] < 0.5).all()
    assert soft[:, 60:].min() > 0.99
    # softened: there are intermediate values at the seams
    assert ((soft > 0.05) & (soft < 0.95)).any()


def test_occlusion_mask_flags_vectors_leaving_the_frame():
    bw = np.zeros((30, 40, 2), np.float32)
    bw[..., 0] = -5.0  # camera pans: left columns came from outside frame t-1
    hard = occlusion_mask(bw, -bw, soften=False)
    assert (hard[:, :4] == 0).all() and (hard[:, 6:] == 1).all()


def test_is_scene_cut():
    assert is_scene_cut(0.8, 0.5) is True
    assert is_scene_cut(0.1, 0.5) is False


def test_unknown_method_raises_config_error_listing_valid_ones():
    with pytest.raises(ConfigError) as err:
        FlowEstimator("lucas-kanade")
    for m in FLOW_METHODS:
        assert m in str(err.value)
    with pytest.raises(ConfigError):
        FlowEstimator("dis-fast", max_side=0)


def test_frames_must_match():
    est = FlowEstimator()
    with pytest.raises(ValueError):
        est.backward(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 40, 3), np.uint8))
    with pytest.raises(ValueError):
        est.backward(np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 3), np.float32))


def test_import_does_not_pull_tensorflow():
    code = "import sys, dreamvideo.flow; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# -- real images ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_rubberwhale_warp_explains_motion(method):
    f1, f2 = read_rgb("rubberwhale1.png"), read_rgb("rubberwhale2.png")
    flow = FlowEstimator(method).backward(f2, f1)
    assert flow.shape == f1.shape[:2] + (2,) and flow.dtype == np.float32
    ratio = mae(warp(f1, flow), f2) / mae(f1, f2)
    assert ratio < 0.5, ratio  # measured 0.26-0.35


def test_rubberwhale_reduced_resolution_still_helps():
    f1, f2 = read_rgb("rubberwhale1.png"), read_rgb("rubberwhale2.png")
    flow = FlowEstimator("dis-fast", max_side=320).backward(f2, f1)
    assert flow.shape == f1.shape[:2] + (2,)
    assert mae(warp(f1, flow), f2) / mae(f1, f2) < 0.65  # measured 0.48


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_known_shift_is_recovered(method):
    prev = read_rgb("starry_night.jpg")
    cur = shifted(prev, 7, -4)  # cur(x) = prev(x - (7, -4)): backward flow is (-7, +4)
    est = FlowEstimator(method)
    bw = est.backward(cur, prev)
    fw = est.forward(cur, prev)
    inner = (slice(40, -40), slice(40, -40))
    err = np.abs(bw[inner] - np.float32([-7, 4])).max(-1)
    assert np.percentile(err, 95) < 0.5, np.percentile(err, 95)
    np.testing.assert_allclose(bw[inner].reshape(-1, 2).mean(0), [-7, 4], atol=0.1)
    np.testing.assert_allclose(fw[inner].reshape(-1, 2).mean(0), [7, -4], atol=0.1)
    assert mae(warp(prev, bw)[inner], cur[inner]) < 0.2 * mae(prev[inner], cur[inner])


def test_max_side_upscales_vectors():
    prev = read_rgb("starry_night.jpg")  # 752x600
    cur = shifted(prev, 7, -4)
    est = FlowEstimator("dis-fast", max_side=240)
    bw = est.backward(cur, prev)
    assert bw.shape == prev.shape[:2] + (2,)
    np.testing.assert_allclose(np.median(bw[60:-60, 60:-60].reshape(-1, 2), 0), [-7, 4], atol=0.5)
    dis = est._dis
    est.backward(prev, cur)
    assert est._dis is dis  # the DIS instance is reused


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_moving_square_disocclusion_is_unreliable(method):
    bg = read_rgb("starry_night.jpg")[100:340, 100:420].copy()  # 240x320 texture
    square = read_rgb("fruits.jpg")[150:230, 150:230].copy()  # 80x80 other texture

    def scene(x):
        f = bg.copy()
        f[80:160, x : x + 80] = square
        return f

    prev, cur = scene(100), scene(110)  # the square moves 10 px right
    est = FlowEstimator(method)
    mask = occlusion_mask(est.backward(cur, prev), est.forward(cur, prev))
    strip = mask[82:158, 101:109]  # uncovered at t: background there was under the square at t-1
    assert (strip < 0.5).mean() > 0.8, (strip < 0.5).mean()  # measured 0.95-1.0
    static = np.ones(mask.shape, bool)
    static[70:170, 90:200] = False
    assert (mask[static] >= 0.5).mean() > 0.95  # measured 0.99-1.0


def test_unrelated_images_are_a_scene_cut():
    a = read_rgb("butterfly.jpg")
    b = cv2.resize(read_rgb("fruits.jpg"), (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    flow, mask, frac = coherence(b, a, FlowEstimator())
    assert flow.shape == a.shape[:2] + (2,) and mask.shape == a.shape[:2]
    assert frac > 0.5, frac  # measured 0.99
    assert is_scene_cut(frac, VideoConfig().scene_cut)  # the default threshold restarts the chain here


def test_consecutive_video_frames_are_coherent():
    cap = cv2.VideoCapture(str(need(MEDIA / "vtest.avi")))
    frames = []
    try:
        while len(frames) < 3:
            ok, f = cap.read()
            assert ok, "vtest.avi did not decode"
            frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    est = FlowEstimator()
    for prev, cur in zip(frames, frames[1:]):
        _, mask, frac = coherence(cur, prev, est)
        assert frac < 0.2, frac  # measured ~0.05
        assert not is_scene_cut(frac, VideoConfig().scene_cut)  # ... and keeps it going here
        assert (mask >= 0.5).mean() > 0.8
