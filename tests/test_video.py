"""`dreamvideo video`: what a user checks on the output file."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.cli import app
from dreamvideo.config import Settings, merge
from dreamvideo.decode import read_image
from dreamvideo.errors import ConfigError, InputError, OutputError
from dreamvideo.probe import probe
from dreamvideo.render import render_video
from helpers import MEDIA, ffmpeg, folder_frames, frames_of, make_clip, need, panning_clip

runner = CliRunner()
TINY = {"model": "tiny", "steps": 2, "octaves": 2, "step_size": 0.05, "warm_steps": 1}


def tiny(**kw) -> Settings:
    return merge(Settings(), {**TINY, **kw}, "test")


@pytest.fixture(scope="module")
def vtest12(tmp_path_factory) -> Path:
    """A 12-frame cut of the real pedestrian clip, small."""
    src = need(MEDIA / "vtest.avi")
    out = tmp_path_factory.mktemp("vtest") / "vtest12.mp4"
    ffmpeg("-ss", "3", "-i", str(src), "-frames:v", "12", "-vf", "scale=192:144", "-c:v", "libx264", "-crf", "12",
           "-pix_fmt", "yuv420p", str(out))
    return out


@pytest.mark.slow
def test_real_clip_counts_rate_size_and_coherence_beats_independent(vtest12, tmp_path):
    """12 real frames dreamed with real weights: count, rate, size match; flicker far below independent dreams."""
    real = {"model": "efficientnet_lite0", "steps": 8, "octaves": 2, "max_side": 192}
    coherent = render_video(vtest12, tmp_path / "coherent.mp4", merge(Settings(), real, "t"))
    independent = render_video(vtest12, tmp_path / "indep.mp4", merge(Settings(), {**real, "coherent": False}, "t"))
    info = probe(tmp_path / "coherent.mp4")
    assert len(frames_of(tmp_path / "coherent.mp4")) == 12
    assert info.fps == probe(vtest12).fps
    assert (info.width, info.height) == (192, 144)
    assert coherent.metrics["strength"] > 5.0, coherent.metrics  # visibly dreamed (0-255)
    ratio = coherent.metrics["flicker"] / independent.metrics["flicker"]
    assert ratio < 0.5, (coherent.metrics, independent.metrics)
    settings = json.loads((tmp_path / "coherent.settings.json").read_text())
    assert settings["metrics"]["flicker"] == coherent.metrics["flicker"]
    assert settings["fps"] == "10/1" and settings["frames"] == 12


def test_dream_moves_with_the_scene(tmp_path, media):
    """On a clip panning 3 px a frame, each dreamed frame matches the previous one shifted with the pan."""
    image = read_image(media / "starry_night.jpg")
    clip = panning_clip(tmp_path / "pan.mp4", image, frames=8, step=3, size=(128, 96))
    render_video(clip, tmp_path / "out/", tiny(steps=3))
    outs = [f.astype(np.float32) for f in folder_frames(tmp_path / "out")]
    raws = frames_of(clip)
    assert len(outs) == 8
    follow, still = [], []
    for a, b in zip(outs[3:], outs[4:]):
        follow.append(np.abs(b[8:-8, 8:-16] - a[8:-8, 11:-13]).mean())  # content moved 3 px left
        still.append(np.abs(b[8:-8, 8:-16] - a[8:-8, 8:-16]).mean())
    assert np.mean(follow) < 0.6 * np.mean(still), (follow, still)
    assert np.abs(outs[-1] - raws[-1].astype(np.float32)).mean() > 3  # and it is dreamed


def test_audio_is_kept_and_cut_to_the_video(tmp_path, media):
    image = read_image(media / "fruits.jpg")
    clip = panning_clip(tmp_path / "sound.mp4", image, frames=10, fps="10", audio_seconds=3.0)
    out = tmp_path / "dreamed.mp4"
    render_video(clip, out, tiny())
    info = probe(out)
    assert info.has_audio
    assert abs(info.duration - 1.0) <= 1 / 10 + 0.03, info.duration  # 10 frames at 10 fps, within a frame


def test_exact_ntsc_rate_and_silent_source(tmp_path):
    clip = make_clip(tmp_path / "ntsc.mp4", seconds=0.5, fps="24000/1001", size="96x64")
    out = tmp_path / "ntsc out.mp4"  # a space in the name
    render_video(clip, out, tiny())
    info = probe(out)
    assert info.fps == Fraction(24000, 1001)
    assert not info.has_audio
    assert len(frames_of(out)) == len(frames_of(clip))


def test_rotated_clip_comes_out_upright(tmp_path):
    src = make_clip(tmp_path / "land.mp4", seconds=0.3, fps="10", size="96x64")
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(src), "-c", "copy", str(rotated))
    out = tmp_path / "upright.mp4"
    render_video(rotated, out, tiny())
    first = frames_of(out)[0]
    assert first.shape[:2] == (96, 64)  # portrait, as the player shows the source


def test_gif_webm_and_png_folder_outputs(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=0.4, fps="10", size="96x64")
    for name in ("o.gif", "o.webm"):
        render_video(clip, tmp_path / name, tiny())
        assert len(frames_of(tmp_path / name)) == 4
    render_video(clip, tmp_path / "frames/", tiny())
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4
    assert (tmp_path / "frames.settings.json").is_file()


def test_truncated_clip_renders_what_decodes(tmp_path, vtest12):
    """A real clip cut in half: what decodes is rendered, a warning says how many, the output is valid."""
    whole = tmp_path / "whole.avi"
    ffmpeg("-i", str(vtest12), "-c:v", "mpeg4", "-q:v", "3", str(whole))
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = render_video(cut, tmp_path / "out.mp4", tiny())
    assert 0 < result.frames < 12
    assert len(frames_of(tmp_path / "out.mp4")) == result.frames
    assert any(f"gave {result.frames} of the " in w for w in result.warnings), result.warnings
    assert whole.read_bytes() == data  # inputs are never touched


@pytest.mark.parametrize("case", ["missing", "text", "empty", "audio-only"])
def test_bad_inputs_are_one_line_errors(tmp_path, case):
    path = tmp_path / "in.mp4"
    if case == "text":
        path.write_text("not a video")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "audio-only":
        path = tmp_path / "in.m4a"
        ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(path))
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(path), "-o", str(out), "--model", "tiny"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not list(tmp_path.glob("*partial*"))


def test_unwritable_output_folder(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=0.2, fps="10", size="96x64")
    with pytest.raises(OutputError):
        render_video(clip, tmp_path / "no" / "such" / "out.mp4", tiny())
    with pytest.raises((OutputError, ConfigError)):
        render_video(clip, clip, tiny())  # never overwrite the input
    with pytest.raises(ConfigError):
        render_video(clip, tmp_path / "out.png", tiny())  # a still image is not a video output


def test_cli_video_with_report(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=0.5, fps="10", size="96x64", audio=True)
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), "--model", "tiny", "--steps", "2",
                                 "--octaves", "1", "--report", "--max-frames", "4"])
    assert result.exit_code == 0, result.output
    assert "flicker" in result.output and "dream strength" in result.output
    assert len(frames_of(out)) == 4 and probe(out).has_audio


def test_start_and_duration_pick_the_right_span(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=2.0, fps="10", size="96x64")
    out = tmp_path / "out.mp4"
    render_video(clip, out, tiny(start=0.5, duration=0.8))
    assert len(frames_of(out)) == 8


def test_no_frames_decoded_is_an_error(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=0.5, fps="10", size="96x64")
    with pytest.raises(InputError):
        render_video(clip, tmp_path / "out.mp4", tiny(start=30.0))
