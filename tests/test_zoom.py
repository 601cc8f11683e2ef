"""`dreamvideo zoom`: the camera (per second, any fps), the chain, loops, colour, audio, resume, errors."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.cli import app
from dreamvideo.config import Settings, ZoomConfig, merge
from dreamvideo.decode import iter_frames
from dreamvideo.probe import probe
from dreamvideo.zoom import (
    camera_matrix,
    frame_count,
    render_zoom,
    step_transform,
    transform,
)
from helpers import MEDIA, ffmpeg, folder_frames, make_clip, need

runner = CliRunner()
TINY = {"model": "tiny", "steps": 3, "octaves": 2, "step_size": 0.05, "warm_steps": 2}


def tiny(**kw) -> Settings:
    return merge(Settings(), {**TINY, **kw}, "test")


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _h(M: np.ndarray) -> np.ndarray:
    return np.vstack([M, [0.0, 0.0, 1.0]])


# --- the camera, pure ----------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [Fraction(24), Fraction(60), Fraction(24000, 1001)])
def test_per_frame_steps_compose_to_the_per_second_motion(fps):
    """fps steps of one frame = one second of camera, whatever the rate; zoom per frame is a root, not a ratio."""
    z = ZoomConfig(zoom_per_second=1.5, rotate_per_second=10.0, translate_per_second=(0.1, -0.05), center=(0.3, 0.6))
    size = (128, 96)
    step = step_transform(fps, size, z)
    n = 24000 if fps.denominator != 1 else int(fps)  # 24000/1001 fps: 24000 frames = 1001 s
    secs = float(Fraction(n) / fps)
    total = np.linalg.matrix_power(_h(step), n)[:2]
    np.testing.assert_allclose(total, camera_matrix(secs, size, z), rtol=1e-6, atol=1e-6 * max(1.0, secs))
    per_frame_scale = float(np.sqrt(np.linalg.det(step[:, :2])))
    assert per_frame_scale == pytest.approx(1.5 ** float(1 / fps), rel=1e-12)
    # The centre of a pure zoom/rotation stays put; counter-clockwise on screen as cv2.getRotationMatrix2D.
    import cv2

    pure = ZoomConfig(zoom_per_second=1.5, rotate_per_second=10.0, center=(0.3, 0.6))
    np.testing.assert_allclose(camera_matrix(1.0, size, pure),
                               cv2.getRotationMatrix2D((0.3 * 127, 0.6 * 95), 10.0, 1.5), atol=1e-5)


def test_transform_is_subpixel_and_never_black():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (64, 80, 3)).astype(np.float32)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert mean_abs(transform(img, ident), img) < 1e-3
    # A 1/1000 pixel move changes the picture, 10x more for 1/100: nothing is rounded to a pixel grid.
    d1 = mean_abs(transform(img, np.array([[1.0, 0, 0.001], [0, 1.0, 0]])), img)
    d10 = mean_abs(transform(img, np.array([[1.0, 0, 0.01], [0, 1.0, 0]])), img)
    assert d1 > 0 and d10 / d1 == pytest.approx(10.0, rel=0.1)
    # Pulling out and turning: the corners are reflected content, never black.
    bright = np.full((64, 80, 3), 200.0, dtype=np.float32)
    z = ZoomConfig(zoom_per_second=0.5, rotate_per_second=30.0)
    out = transform(bright, camera_matrix(1.0, (80, 64), z))
    assert out.min() > 199.0


@pytest.mark.parametrize("fps", [24, 60])
def test_a_chain_of_steps_keeps_positions_exact(fps):
    """One second of per-frame resamplings moves small dots where one camera_matrix(1 s) puts them
    (OpenCV's bicubic alone drifts ~3 px here at 60 fps: it does not reproduce linear ramps)."""
    w, h = 160, 120
    ys, xs = np.mgrid[0:h, 0:w]
    dots = [(50.3, 40.7), (110.2, 76.1), (58.0, 80.0)]
    img = np.zeros((h, w, 3), dtype=np.float32)
    for x, y in dots:
        img += 200.0 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 8.0)[..., None]
    z = ZoomConfig(zoom_per_second=1.5, rotate_per_second=8.0)
    step = step_transform(Fraction(fps), (w, h), z)
    out = img
    for _ in range(fps):
        out = np.rint(transform(out, step))
    M = camera_matrix(1.0, (w, h), z)
    for x, y in dots:
        ex, ey = M @ [x, y, 1.0]
        near = ((xs - ex) ** 2 + (ys - ey) ** 2 < 64) * out[..., 0]
        cx, cy = (near * xs).sum() / near.sum(), (near * ys).sum() / near.sum()
        assert abs(cx - ex) < 0.3 and abs(cy - ey) < 0.3, ((x, y), (ex, ey), (cx, cy))


def test_frame_count_is_exact():
    assert frame_count(10, Fraction(24000, 1001)) == 240  # 239.76 -> 240
    assert frame_count(1.5, Fraction(24000, 1001)) == 36  # 35.96
    assert frame_count(2.5, Fraction(3)) == 8  # 7.5 rounds half up
    assert frame_count(0.01, Fraction(30)) == 1


# --- renders -------------------------------------------------------------------------------------


def test_cli_frame_count_rate_and_motion(tmp_path):
    """seconds x fps frames at the exact rate; neighbours are close while the dive changes the picture."""
    out = tmp_path / "dive.mp4"
    src = need(MEDIA / "starry_night.jpg")
    res = runner.invoke(app, ["zoom", str(src), "-o", str(out), "--seconds", "1.5", "--fps", "24000/1001",
                              "--size", "96x64", "--model", "tiny", "--steps", "3", "--octaves", "2",
                              "--warm-steps", "2", "--zoom-per-second", "2"])
    assert res.exit_code == 0, res.output
    frames = [f.astype(np.float32) for f in iter_frames(out)]
    assert len(frames) == 36
    info = probe(out)
    assert info.fps == Fraction(24000, 1001) and (info.width, info.height) == (96, 64)
    steps = [mean_abs(a, b) for a, b in zip(frames, frames[1:])]
    assert mean_abs(frames[0], frames[-1]) > 2.0 * float(np.median(steps)), steps
    doc = json.loads((tmp_path / "dive.settings.json").read_text())
    assert doc["frames"] == 36 and doc["fps"] == "24000/1001" and doc["settings"]["zoom"]["zoom_per_second"] == 2.0
    assert not (tmp_path / "dive.mp4.dreamvideo-work").exists()


def _estimate_zoom(f0: np.ndarray, f1: np.ndarray) -> float:
    """Scale s such that f1 ~ f0 zoomed by s about the centre: best normalised correlation on the middle."""
    import cv2

    g0 = cv2.cvtColor(f0.astype(np.float32), cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(f1.astype(np.float32), cv2.COLOR_RGB2GRAY)
    h, w = g0.shape
    box = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    b = g1[box] - g1[box].mean()
    best, best_s = -2.0, 0.0
    for s in np.arange(1.2, 1.8, 0.0025):
        M = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, float(s))
        a = cv2.warpAffine(g0, M, (w, h), flags=cv2.INTER_CUBIC)[box]
        a = a - a.mean()
        ncc = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
        if ncc > best:
            best, best_s = ncc, float(s)
    return best_s


def test_zoom_per_second_is_the_same_at_24_and_60_fps(tmp_path):
    """Dreaming off: the picture one second in is the first zoomed by zoom_per_second, at 24 and at 60 fps."""
    src = need(MEDIA / "starry_night.jpg")
    found = {}
    for fps in (24, 60):
        out = tmp_path / f"z{fps}/"
        render_zoom(src, out, tiny(steps=0, size=(160, 120), seconds=1.05, fps=fps, zoom_per_second=1.5))
        frames = folder_frames(out)
        assert len(frames) == round(1.05 * fps)
        found[fps] = _estimate_zoom(frames[0], frames[fps])
    for fps, s in found.items():
        assert s == pytest.approx(1.5, rel=0.03), found
    assert found[24] == pytest.approx(found[60], rel=0.02), found


def test_loop_seam_is_an_ordinary_step(tmp_path):
    """--loop with dreaming on: mean |last - first| is no bigger than the steps between neighbours."""
    src = need(MEDIA / "starry_night.jpg")
    out = tmp_path / "loop/"
    res = runner.invoke(app, ["zoom", str(src), "-o", str(out), "--seconds", "2", "--fps", "12", "--loop",
                              "--set", "loop_seconds=0.5", "--size", "96x64", "--model", "tiny", "--steps", "4",
                              "--octaves", "2", "--warm-steps", "2", "--rotate-per-second", "5"])
    assert res.exit_code == 0, res.output
    frames = folder_frames(out)
    assert len(frames) == 24
    steps = [mean_abs(a, b) for a, b in zip(frames, frames[1:])]
    median = float(np.median(steps))
    seam = mean_abs(frames[-1], frames[0])
    assert median > 1.0  # the content really moves
    assert seam <= 1.5 * median, (seam, median)
    assert max(steps) <= 2.0 * median, steps  # the fade that closes the loop is no jump either
    # Without the fade the wrap would be a cut: first and last are far apart.
    assert mean_abs(frames[-1], frames[6]) > 1.5 * median
    doc = json.loads((tmp_path / "loop.settings.json").read_text())
    assert doc["loop"]["fade_frames"] == 6 and doc["loop"]["rendered_frames"] == 30
    assert doc["metrics"]["seam"] == pytest.approx(seam, abs=0.01)


@pytest.mark.slow
def test_colour_holds_over_a_long_run(tmp_path):
    """60 warm-started dreams of 64x64: the last frame's colour mean and std stay near the first's."""
    src = need(MEDIA / "starry_night.jpg")
    out = tmp_path / "long/"
    render_zoom(src, out, tiny(size=(64, 64), seconds=2, fps=30, step_size=0.08, zoom_per_second=1.5))
    frames = folder_frames(out)
    assert len(frames) == 60
    first, last = frames[0].reshape(-1, 3), frames[-1].reshape(-1, 3)
    assert np.abs(last.mean(0) - first.mean(0)).max() < 6.0, (first.mean(0), last.mean(0))
    assert np.abs(last.std(0) - first.std(0)).max() < 6.0, (first.std(0), last.std(0))
    assert mean_abs(frames[0], frames[-1]) > 10.0  # the content did change
    # The hold is what keeps it: without it the same chain slides far off (tiny model: red 59 -> 188).
    free = tmp_path / "free/"
    render_zoom(src, free, tiny(size=(64, 64), seconds=2, fps=30, step_size=0.08, zoom_per_second=1.5,
                                color_match=False))
    loose = folder_frames(free)
    assert np.abs(loose[-1].reshape(-1, 3).mean(0) - loose[0].reshape(-1, 3).mean(0)).max() > 20.0


def test_noise_with_size_and_audio(tmp_path):
    sound = tmp_path / "tone.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:a", "aac", str(sound))
    out = tmp_path / "noise.mp4"
    res = runner.invoke(app, ["zoom", "--noise", "-o", str(out), "--size", "96x64", "--seconds", "1.5", "--fps", "10",
                              "--soundtrack", str(sound), "--model", "tiny", "--steps", "2", "--octaves", "2"])
    assert res.exit_code == 0, res.output
    info = probe(out)
    assert (info.width, info.height) == (96, 64)
    assert info.has_audio
    assert info.duration == pytest.approx(1.5, abs=0.15)
    assert len(list(iter_frames(out))) == 15
    frame = next(iter(iter_frames(out))).astype(np.float32)
    assert frame.std() > 10  # not a flat field


def test_schedule_drives_the_camera(tmp_path):
    """A schedule holding zoom_per_second at 1 overrides the config's zoom: with dreaming off, nothing moves."""
    out = tmp_path / "still/"
    render_zoom(None, out, tiny(noise=True, steps=0, size=(64, 48), seconds=1, fps=8, zoom_per_second=2.0,
                                schedule=["zoom_per_second=0:1,1:1"]))
    frames = folder_frames(out)
    assert len(frames) == 8 and mean_abs(frames[0], frames[-1]) < 0.5
    moving = tmp_path / "moving/"
    render_zoom(None, moving, tiny(noise=True, steps=0, size=(64, 48), seconds=1, fps=8, zoom_per_second=2.0))
    assert mean_abs(*[folder_frames(moving)[i] for i in (0, -1)]) > 5.0


def test_resume_continues_the_chain_exactly(tmp_path):
    src = need(MEDIA / "starry_night.jpg")
    s = tiny(size=(64, 48), seconds=1, fps=10, loop=True, loop_seconds=0.3)
    whole = render_zoom(src, tmp_path / "whole/", s)

    class Stop(Exception):
        pass

    def stop_at(done, total):
        if done == 7:
            raise Stop

    with pytest.raises(Stop):
        render_zoom(src, tmp_path / "cut/", s, on_progress=stop_at)
    assert not (tmp_path / "cut").exists() and (tmp_path / "cut.dreamvideo-work").is_dir()
    again = render_zoom(src, tmp_path / "cut/", s)
    assert again.resumed_frames == 7 and whole.frames == again.frames == 10
    for a, b in zip(folder_frames(tmp_path / "whole"), folder_frames(tmp_path / "cut"), strict=True):
        assert np.array_equal(a, b)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--noise", "--zoom-per-second", "0"],
    ["--noise", "--zoom-per-second", "-1.2"],
    ["--noise", "--fps", "0"],
    ["--noise", "--fps", "fast"],
    ["--noise", "--seconds", "-1"],
    ["--noise", "--center", "1.5,0.5"],
    ["--noise", "--center", "0.5"],
    ["--noise", "--size", "big"],
    [],  # neither an image nor --noise
    ["IMAGE", "--noise"],  # both
    ["--noise", "--react", "zoom_per_second=loudness:1..2"],  # reacting to sound without --audio
])
def test_bad_options_are_one_line_errors(tmp_path, args):
    src = need(MEDIA / "starry_night.jpg")
    out = tmp_path / "bad.mp4"
    args = [str(src) if a == "IMAGE" else a for a in args]
    res = runner.invoke(app, ["zoom", *args, "-o", str(out), "--model", "tiny"])
    assert res.exit_code != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_failure_before_the_first_frame_leaves_no_work_folder(tmp_path):
    """--react on an --audio file without sound fails after the work folder opened: nothing stays behind."""
    from dreamvideo.resume import work_dir_for

    silent = make_clip(tmp_path / "silent.mp4", seconds=0.5, fps="10", size="64x64")
    out = tmp_path / "z.mp4"
    r = runner.invoke(app, ["zoom", "--noise", "--size", "64x64", "-o", str(out), "--seconds", "0.5", "--model",
                            "tiny", "--soundtrack", str(silent), "--react", "step_size=loudness:0.01..0.02"])
    assert r.exit_code == 1 and "sound" in r.output and "Traceback" not in r.output, r.output
    assert not out.exists() and not work_dir_for(out).exists()
