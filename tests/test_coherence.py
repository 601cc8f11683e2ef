"""The coherent chain v2 (issue 12): what a user sees when a dreamed video holds together or not.

Chain-level tests run VideoChain on in-memory frames with the input's real DIS flow (flow.coherence),
as render_video does, without encoding; the report test goes through render_video.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import MEDIA, ffmpeg, need

from dreamvideo.chain import VideoChain
from dreamvideo.config import Settings, merge
from dreamvideo.decode import iter_frames, read_image
from dreamvideo.dream import get_engine
from dreamvideo.flow import FlowEstimator, coherence
from dreamvideo.metrics import Metrics, scratch_indices

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_coherence import V1, run_method, scratch_dreams

TINY = {"model": "tiny", "steps": 6, "octaves": 2, "step_size": 0.05}


def settings(**kw) -> Settings:
    return merge(Settings(), {**TINY, **kw}, "test")


def cohs_of(frames: list[np.ndarray]) -> list:
    est = FlowEstimator("dis-medium")
    return [None] + [coherence(frames[i], frames[i - 1], est) for i in range(1, len(frames))]


def chain_run(s: Settings, frames: list[np.ndarray], cohs: list | None = None):
    """(outputs, Metrics, infos) of the chain over ``frames``."""
    cohs = cohs if cohs is not None else cohs_of(frames)
    chain = VideoChain(get_engine(s.dream), s)
    metrics, outs, infos = Metrics(), [], []
    for i, (raw, coh) in enumerate(zip(frames, cohs)):
        prev_raw, prev_out = chain.prev_raw, chain.prev_out
        out, info = chain.step(i, raw, coh)
        metrics.add(raw, out, prev_raw, prev_out, coh, info["cut"], i)
        outs.append(out)
        infos.append(info)
    return outs, metrics, infos


def strength(out: np.ndarray, raw: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean())


@pytest.fixture(scope="module")
def vtest_frames() -> list[np.ndarray]:
    """24 real frames of vtest.avi (people walking, static camera) at 192x144."""
    src = need(MEDIA / "vtest.avi")
    frames = []
    for i, f in enumerate(iter_frames(src, max_side=192)):
        if i >= 100:
            frames.append(f)
        if len(frames) == 24:
            break
    return frames


def test_two_shot_clip_restarts_at_the_cut(media, vtest_frames):
    """A real clip, then another picture: the first frame after the cut is exactly an independent dream of it."""
    other = cv2.resize(read_image(media / "starry_night.jpg"), (192, 144), interpolation=cv2.INTER_AREA)
    frames = vtest_frames[:4] + [other, np.roll(other, 2, axis=1)]
    s = settings()
    outs, _, infos = chain_run(s, frames)
    assert [i["cut"] for i in infos] == [False, False, False, False, True, False]
    assert [i["seeded"] for i in infos] == [False, True, True, True, False, True]
    alone = VideoChain(get_engine(s.dream), s.replace(coherent=False)).step(4, other, None)[0]
    assert np.array_equal(outs[4], alone)
    assert strength(outs[4], other) > 5  # and it is dreamed, not the raw picture


def moving_square(n: int = 9, step: int = 4) -> tuple[list[np.ndarray], int]:
    """A bright patterned square moving right by ``step`` px a frame over a real textured still."""
    bg = cv2.resize(read_image(need(MEDIA / "fruits.jpg")), (160, 120), interpolation=cv2.INTER_AREA)
    yy, xx = np.indices((32, 32))
    square = np.stack([(xx // 4 + yy // 4) % 2 * 200 + 40] * 3, axis=-1).astype(np.uint8)  # a checker
    frames = []
    for i in range(n):
        f = bg.copy()
        f[44:76, 16 + i * step:48 + i * step] = square
        frames.append(f)
    return frames, step


def test_disoccluded_strip_is_dreamed_within_a_few_frames():
    """Background the square uncovers (raw in the input) carries the dream's strength a few frames later."""
    frames, step = moving_square()
    s = settings()
    outs, _, _ = chain_run(s, frames)
    last = len(frames) - 1
    # Uncovered at frames 1-4 (x 16..32), left of where the square is now; background far away for scale.
    strip = np.abs(outs[last].astype(np.float32) - frames[last].astype(np.float32))[44:76, 16:16 + 4 * step].mean()
    static = np.abs(outs[last].astype(np.float32) - frames[last].astype(np.float32))[90:, 100:].mean()
    assert strip > 0.6 * static, (strip, static)
    # The same chain with new content dreamed only like the trusted dream (v1) leaves the strip weaker.
    v1_outs, _, _ = chain_run(s.replace(fresh_step_scale=0.05, carry_untrusted=0.0, catch_up=0.0), frames)
    v1_diff = np.abs(v1_outs[last].astype(np.float32) - frames[last].astype(np.float32))
    v1_strip = v1_diff[44:76, 16:16 + 4 * step].mean()
    assert strip > 1.3 * v1_strip, (strip, v1_strip)


def test_static_clip_keeps_its_dream():
    """The same real picture for 12 frames: the dream neither fades nor snowballs."""
    still = cv2.resize(read_image(need(MEDIA / "butterfly.jpg")), (128, 96), interpolation=cv2.INTER_AREA)
    frames = [still] * 12
    _, m, _ = chain_run(settings(), frames)
    first, last = m.strength[0], m.strength[-1]
    assert first > 5
    assert 0.9 * first <= last <= 1.2 * first, m.strength
    _, m1, _ = chain_run(settings(**V1), frames)  # v1 leaves the band here (it snowballs): the band is not free
    assert not 0.9 * m1.strength[0] <= m1.strength[-1] <= 1.2 * m1.strength[0], m1.strength


@pytest.mark.slow
def test_temporal_term_lowers_flicker(vtest_frames):
    """Real frames, real model: the pull toward the warped dream lowers flicker against weight 0."""
    frames = vtest_frames[:10]
    cohs = cohs_of(frames)
    real = {"model": "efficientnet_lite0", "steps": 8, "octaves": 2, "warm_step_scale": 0.3}
    _, with_term, _ = chain_run(merge(Settings(), real, "t"), frames, cohs)
    _, without, _ = chain_run(merge(Settings(), {**real, "temporal_weight": 0.0}, "t"), frames, cohs)
    a, b = with_term.summary()["flicker"], without.summary()["flicker"]
    assert a < 0.8 * b, (a, b)


@pytest.mark.slow
def test_beats_v1_on_a_real_clip(vtest_frames):
    """24 vtest frames at 192 px, EfficientNet-Lite0: steadier, holds its strength, people dreamed like the floor."""
    frames = vtest_frames
    cohs = cohs_of(frames)
    base = merge(Settings(), {"model": "efficientnet_lite0", "steps": 10, "octaves": 3}, "t")
    engine = get_engine(base.dream)
    scratch = scratch_dreams(engine, base, frames, scratch_indices(len(frames)))
    new = run_method(engine, base, frames, cohs, "new", scratch)[0].summary()
    old = run_method(engine, base.replace(**V1), frames, cohs, "v1", scratch)[0].summary()
    assert new["flicker"] < 0.75 * old["flicker"] and new["flicker"] < 2.0, (new, old)
    assert new["settled_over_scratch"] > old["settled_over_scratch"] + 0.15, (new, old)
    assert new["settled_over_scratch"] >= 0.8, new
    assert 0.85 <= new["growth"] <= 1.2, new
    assert new["moving_over_static"] > old["moving_over_static"] + 0.15 and new["moving_over_static"] >= 0.7, (new, old)
    assert abs(new["drift_per_100_frames"]) < 2.0, new


def test_report_equals_the_bench_and_draws_the_frames(tmp_path, vtest_frames):
    """--report's figures are the bench's on the same clip; the PNG shows the input beside the output."""
    from dreamvideo.render import render_video

    clip = tmp_path / "cut.mp4"
    src = need(MEDIA / "vtest.avi")
    ffmpeg("-i", str(src), "-vf", "select=gte(n\\,100),scale=192:144", "-frames:v", "8", "-r", "10",
           "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(clip))
    s = settings()
    result = render_video(clip, tmp_path / "out.mp4", s, report=True)
    png = tmp_path / "out.report.png"
    assert png.is_file()
    raws = list(iter_frames(clip))
    engine = get_engine(s.dream)
    bench = run_method(engine, s, raws, cohs_of(raws), "new", scratch_dreams(engine, s, raws, scratch_indices(8)))
    assert result.metrics == bench[0].summary()
    for key in ("flicker", "settled_over_scratch", "growth", "moving_over_static", "drift_per_100_frames"):
        assert key in result.metrics
    doc = json.loads((tmp_path / "out.settings.json").read_text())
    assert doc["metrics"] == result.metrics and doc["report"] == str(png)
    fig = read_image(png)
    thumb = cv2.resize(raws[0], (240, 180), interpolation=cv2.INTER_LINEAR)  # first column: frame 0's input
    assert np.abs(fig[18:18 + 180, 4:4 + 240].astype(np.float32) - thumb).mean() < 3
    out_thumb = fig[18:18 + 180, 4 + 248:4 + 488].astype(np.float32)
    assert np.abs(out_thumb - thumb).mean() > 3  # its output beside it is dreamed
    assert fig.shape[0] > 180 + 200  # and the plot is below
