"""Music videos: audio reactions and schedules reach the frames; analyze shows the features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from dreamvideo.audio import analyze_file
from dreamvideo.cli import app
from dreamvideo.decode import read_image
from dreamvideo.probe import probe
from helpers import ffmpeg

runner = CliRunner()


def quiet_then_loud(path: Path, seconds: float = 2.4, fps: int = 10) -> Path:
    """A textured clip whose sound is silent, then loud, then silent again."""
    third = seconds / 3
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={fps}:duration={seconds}",
           "-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={third}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={third}",
           "-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={third}",
           "-filter_complex", "[1:a][2:a][3:a]concat=n=3:v=0:a=1[a]", "-map", "0:v", "-map", "[a]",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def test_strength_follows_loudness(tmp_path):
    clip = quiet_then_loud(tmp_path / "song.mp4")
    out = tmp_path / "out.mp4"
    r = runner.invoke(app, ["video", str(clip), "-o", str(out), "--model", "tiny", "--steps", "3", "--octaves", "1",
                            "--warm-steps", "3", "--react", "step_size=loudness:0.002..0.08"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out.settings.json").read_text())
    strength = np.array(doc["per_frame_strength"])
    loud = analyze_file(clip, probe(clip).fps, n_frames=len(strength)).loudness
    assert len(strength) == 24
    corr = np.corrcoef(strength, loud)[0, 1]
    assert corr > 0.5, (corr, strength.round(1), loud.round(2))
    assert doc["timeline"][0]["spec"] == "step_size=loudness:0.002..0.08"


def test_schedule_is_applied_and_recorded(tmp_path):
    clip = quiet_then_loud(tmp_path / "clip.mp4")
    out = tmp_path / "frames/"
    r = runner.invoke(app, ["video", str(clip), "-o", str(out), "--model", "tiny", "--steps", "2", "--octaves", "1",
                            "--independent", "--schedule", "step_size=0:0.0,2.3:0.1"])
    assert r.exit_code == 0, r.output
    frames = sorted((tmp_path / "frames").glob("*.png"))
    doc = json.loads((tmp_path / "frames.settings.json").read_text())
    strength = doc["per_frame_strength"]
    assert strength[0] < 0.5 < strength[-1]  # step 0 at t=0: untouched; 0.1 at the end: dreamed
    assert len(frames) == 24 and read_image(frames[0]).shape == (64, 96, 3)


def test_bad_specs_show_the_expected_form(tmp_path):
    clip = quiet_then_loud(tmp_path / "clip.mp4")
    for flag, spec, form in (("--schedule", "step_size=0-0.005", "NAME=T:V"),
                             ("--react", "step_size=volume:1..2", "loudness"),
                             ("--react", "nosuch=loudness:0..1", "step_size")):
        r = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "tiny", flag, spec])
        assert r.exit_code == 1, r.output
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and form in lines[0], r.output
        assert not (tmp_path / "o.mp4").exists()


def test_react_without_sound_is_a_clear_error(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=0.5", "-pix_fmt", "yuv420p",
           str(tmp_path / "s.mp4"))
    r = runner.invoke(app, ["video", str(tmp_path / "s.mp4"), "-o", str(tmp_path / "o.mp4"), "--model", "tiny",
                            "--react", "step_size=loudness:0.01..0.02"])
    assert r.exit_code == 1 and "sound" in r.output and "Traceback" not in r.output


def test_analyze_plots_the_features(tmp_path):
    clip = quiet_then_loud(tmp_path / "song.mp4")
    r = runner.invoke(app, ["analyze", str(clip), "-o", str(tmp_path / "f.png")])
    assert r.exit_code == 0, r.output
    img = read_image(tmp_path / "f.png")
    assert img.shape[0] > 200 and img.shape[1] > 600 and img.std() > 10


def test_music_video_preset_renders(tmp_path):
    clip = quiet_then_loud(tmp_path / "song.mp4", seconds=0.9)
    r = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--preset", "music-video",
                            "--model", "tiny", "--steps", "2", "--octaves", "1"])
    assert r.exit_code == 0, r.output
    assert probe(tmp_path / "o.mp4").has_audio
