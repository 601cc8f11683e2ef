"""Audio analysis: onsets land on the beats' frames, loudness orders sections, bands, cache, plot, decode."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from dreamvideo.audio import (
    FEATURES,
    AudioFeatures,
    analyze,
    analyze_file,
    load_features,
    plot_features,
    save_features,
)
from dreamvideo.encode import write_image
from dreamvideo.errors import ConfigError, InputError
from helpers import ffmpeg

SR = 22050
CLICKS = [2.0 + 0.5 * k for k in range(6)]  # 2.0, 2.5, ..., 4.5 s
SILENCE, CLICK_PART, TONE = (0.0, 2.0), (2.0, 5.0), (5.0, 7.0)
FPS_CASES = [Fraction(24), Fraction(30), Fraction(24000, 1001)]


def synthetic_track(noise: float = 1e-4, seed: int = 0) -> np.ndarray:
    """2 s of (near) silence, clicks every 0.5 s for 3 s, then a loud 440 Hz tone for 2 s."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, noise, 7 * SR)
    burst = int(0.005 * SR)
    for c in CLICKS:
        i = int(round(c * SR))
        x[i : i + burst] += 0.6 * rng.uniform(-1, 1, burst) * np.exp(-np.arange(burst) / (0.001 * SR))
    n = np.arange(5 * SR, 7 * SR)
    x[n] += 0.8 * np.sin(2 * np.pi * 440 * n / SR)
    return x.astype(np.float32)


def frame_of(t: float, fps: Fraction) -> int:
    """The frame whose interval [n/fps, (n+1)/fps) contains t (exact)."""
    return math.floor(Fraction(t) * fps)


def section(values: np.ndarray, span: tuple[float, float], fps: Fraction) -> np.ndarray:
    return values[frame_of(span[0], fps) : frame_of(span[1], fps)]


@pytest.fixture(scope="module")
def track() -> np.ndarray:
    return synthetic_track()


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_onsets_land_on_the_clicks_frames(track, fps):
    f = analyze(track, SR, fps)
    onsets = list(f.onset_frames)
    expected = [frame_of(c, fps) for c in CLICKS]
    for c, want in zip(CLICKS, expected):
        near = [o for o in onsets if abs(o - want) <= 1]
        assert near, f"click at {c}s (frame {want}) not found at {fps} fps; onsets: {onsets}"
    spurious = [o for o in onsets if all(abs(o - e) > 1 for e in expected)]
    assert len(spurious) <= 1, f"spurious onsets {spurious} at {fps} fps"
    assert not [o for o in onsets if o < frame_of(SILENCE[1], fps) - 1], "onsets found in the silence"
    # the envelope kicks to 1 on each onset and relaxes before the next click
    assert np.allclose(f.onsets[f.onset_frames], 1.0)
    first = f.onset_frames[0]
    relax = f.onsets[first : first + frame_of(0.4, fps)]
    assert np.all(np.diff(relax) < 0) and relax[-1] < 0.3
    assert section(f.onsets, SILENCE, fps).max() == 0.0


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_loudness_orders_the_sections(track, fps):
    f = analyze(track, SR, fps)
    silence, clicks, tone = (float(section(f.loudness, s, fps).mean()) for s in (SILENCE, CLICK_PART, TONE))
    assert tone > clicks > silence, (silence, clicks, tone)
    assert silence < 0.05 and tone > 0.9
    for name in FEATURES:
        a = f.feature(name)
        assert a.dtype == np.float32 and a.shape == (math.ceil(7 * fps),)  # one value per frame of the 7 s
        assert a.min() >= 0.0 and a.max() <= 1.0


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_frames_cover_the_audio_exactly(track, fps):
    f = analyze(track, SR, fps)
    assert f.fps == fps and isinstance(f.fps, Fraction)
    assert f.n_frames == math.ceil(Fraction(len(track), SR) * fps)  # 7 s -> 168 / 210 / 168 frames
    assert f.duration == pytest.approx(f.n_frames / float(fps))
    assert 7.0 <= f.duration < 7.0 + 1 / float(fps)  # the frames cover the 7 s, with less than a frame over


def test_bands_split_low_mid_high(track):
    fps = Fraction(30)
    f = analyze(track, SR, fps)
    tone_low, tone_mid, tone_high = (float(section(f.feature(b), TONE, fps).mean()) for b in ("low", "mid", "high"))
    assert tone_mid > 0.9 and tone_mid > 2 * tone_low and tone_mid > 5 * tone_high  # 440 Hz is a mid
    assert section(f.high, CLICK_PART, fps).max() > 0.9  # clicks are broadband: they reach the highs
    # a bass tone lights up the low band, a 5 kHz tone the high band
    t = np.arange(2 * SR) / SR
    bass = analyze(0.5 * np.sin(2 * np.pi * 80 * t), SR, fps)
    assert bass.low[10:50].mean() > 0.9 and bass.mid[10:50].mean() < 0.5 and bass.high[10:50].mean() < 0.5
    treble = analyze(0.5 * np.sin(2 * np.pi * 5000 * t), SR, fps)
    assert treble.high[10:50].mean() > 0.9 and treble.low[10:50].mean() < 0.5


def test_n_frames_pads_with_silence_and_cuts(track):
    fps = Fraction(30)
    full = analyze(track, SR, fps)
    longer = analyze(track, SR, fps, n_frames=full.n_frames + 30)
    assert longer.n_frames == full.n_frames + 30
    assert np.allclose(longer.loudness[: full.n_frames], full.loudness)
    assert longer.loudness[-5:].max() < 0.05  # the tone ended: the follower has released
    assert longer.onsets[-5:].max() < 0.05
    shorter = analyze(track, SR, fps, n_frames=90)
    assert shorter.n_frames == 90
    # The cut is the first 90 frames of the whole, not a re-timed analysis: the same onset pulses on the
    # same frames, and the same loudness curve (each cut is scaled to its own 0..1, so compare the shape).
    assert np.array_equal(shorter.onsets, full.onsets[:90])
    assert np.corrcoef(shorter.loudness, full.loudness[:90])[0, 1] > 0.98
    assert section(shorter.loudness, SILENCE, fps).max() < 0.05 < shorter.loudness[-30:].mean()
    assert list(shorter.onset_frames) == [o for o in full.onset_frames if o < 90]


def test_steady_sounds_have_no_onsets():
    rng = np.random.default_rng(3)
    t = np.arange(5 * SR) / SR
    noise = rng.normal(0, 0.1, len(t))
    chord = sum(0.2 * np.sin(2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * 5 * t)) for f0 in (220, 277, 330))
    for x in (noise, chord, np.zeros(len(t))):
        f = analyze(x, SR, Fraction(30))
        assert len(f.onset_frames) <= 1
        assert f.loudness.std() < 0.05  # steady level, no flicker


def test_stereo_input_is_mixed_to_mono(track):
    stereo = np.stack([track, track], axis=1)
    a, b = analyze(track, SR, Fraction(30)), analyze(stereo, SR, Fraction(30))
    assert np.array_equal(a.onset_frames, b.onset_frames)
    assert np.allclose(a.loudness, b.loudness, atol=1e-5)


def test_feature_names(track):
    f = analyze(track[: SR], SR, Fraction(30))
    assert f.feature("loudness") is f.loudness
    with pytest.raises(ConfigError) as err:
        f.feature("beat")
    msg = str(err.value)
    assert "\n" not in msg and "beat" in msg and all(n in msg for n in FEATURES)


def test_save_load_roundtrip(tmp_path, track):
    fps = Fraction(24000, 1001)
    f = analyze(track, SR, fps)
    path = tmp_path / "clip.features.npz"
    save_features(f, path)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    g = load_features(path)
    assert g.fps == fps and isinstance(g.fps, Fraction)
    assert np.array_equal(g.onset_frames, f.onset_frames)
    for name in FEATURES:
        assert np.array_equal(g.feature(name), f.feature(name))


def test_load_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_features(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an npz")
    with pytest.raises(InputError, match="unreadable.*delete it"):
        load_features(junk)


def test_plot_has_requested_size_and_content(tmp_path, track):
    f = analyze(track, SR, Fraction(30))
    img = plot_features(f)
    assert img.shape == (600, 1200, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # curves, fills, text: not a blank canvas
    assert img.std() > 10
    small = plot_features(f, width=640, height=360)
    assert small.shape == (360, 640, 3)
    # the loud tone (last 2 of 7 s) fills the top lanes; the silent start (first 2 s) leaves them dark
    assert img[:150, 900:1150].mean() > img[:150, 150:350].mean() + 20
    # onsets are drawn as vertical lines (the same bright colour down a whole column)
    onset_color = np.array([255, 235, 120], np.uint8)
    columns = np.flatnonzero((img == onset_color).all(axis=2).sum(axis=0) > 50)
    assert len(columns) >= len(f.onset_frames) // 2
    with pytest.raises(ConfigError):
        plot_features(f, width=50, height=20)
    out = tmp_path / "features.png"
    write_image(out, plot_features(f, 800, 400))
    import cv2

    assert cv2.imread(str(out)).shape == (400, 800, 3)


def test_plot_long_track_keeps_short_onsets_visible():
    n = 5000  # more frames than pixel columns
    env = np.zeros(n, np.float32)
    env[[100, 2500, 4900]] = 1.0
    zeros = np.zeros(n, np.float32)
    f = AudioFeatures(Fraction(25), zeros, env, np.array([100, 2500, 4900]), zeros, zeros, zeros)
    img = plot_features(f, 600, 300)
    assert img.shape == (300, 600, 3)
    onset_colour = np.array([255, 235, 120], np.uint8)  # the onset markers' colour
    columns = np.flatnonzero((img == onset_colour).all(2).sum(0) > 30)
    assert len(columns) == 3  # each one-frame onset still gets its own visible line


def test_analysis_is_numpy_only():
    code = ("import sys, dreamvideo.audio, dreamvideo.schedule; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------------------------------------- decode path


@pytest.mark.parametrize("ext,codec", [("wav", "pcm_s16le"), ("m4a", "aac")])
def test_analyze_file_decodes_withffmpeg(tmp_path, ext, codec):
    path = tmp_path / f"tone.{ext}"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", codec, str(path))
    fps = Fraction(30)
    f = analyze_file(path, fps)
    assert abs(f.n_frames - 60) <= 2  # 2 s at 30 fps (AAC may add a few priming samples)
    assert len(f.onset_frames) <= 1  # a steady tone
    assert f.loudness[5:50].mean() > 0.9 and f.mid[5:50].mean() > 0.9
    cut = analyze_file(path, fps, start=0.5, duration=1.0, n_frames=30)
    assert cut.n_frames == 30 and cut.loudness[5:25].mean() > 0.9
