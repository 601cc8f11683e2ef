"""Overnight batches: manifests are validated data, jobs are isolated, finished jobs are skipped,
interrupted renders resume exactly, and --dry-run renders nothing.

Fast: 96x64 frames, the "tiny" model (tests/conftest.py) in-process; the SIGKILL test runs the
real CLI in subprocesses with EfficientNet-Lite0 (bundled weights, no download).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.batch import load_manifest, run_batch
from dreamvideo.cli import app
from dreamvideo.errors import ConfigError
from dreamvideo.toolkit import settings_path
from dreamvideo.resume import work_dir_for
from helpers import REPO, count_frames, folder_frames, make_clip

runner = CliRunner()

# Every job of these tests: tiny model, one octave, one step, small and fast encodes.
TINY_DEFAULTS = """
[defaults]
model = "tiny"
steps = 1
octaves = 1
max_side = 96
[defaults.video]
warm_steps = 1
flow = "dis-fast"
[defaults.encode]
encoder_preset = "ultrafast"
"""


def _image(path: Path, w: int = 96, h: int = 64) -> Path:
    from dreamvideo.encode import write_image

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 255], -1).astype(np.float32)
    img += rng.normal(0, 12, img.shape)
    write_image(path, np.clip(img, 0, 255).astype(np.uint8))
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def night(tmp_path: Path) -> Path:
    """A manifest of three jobs: an image, a video whose input is missing, a video."""
    _image(tmp_path / "in.png")
    make_clip(tmp_path / "clip.mp4", seconds=0.5, fps="10", size="96x64")
    return _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "still"
kind = "image"
input = "in.png"
output = "out/still.png"

[[job]]
name = "beach"
kind = "video"
input = "not-mounted-yet/beach.mp4"
output = "out/beach.mp4"

[[job]]
name = "clip"
kind = "video"
input = "clip.mp4"
output = "out/clip.mp4"
steps = 2
""")


def test_failed_job_is_isolated_and_rerun_skips_finished_jobs(night: Path) -> None:
    tmp = night.parent
    manifest = load_manifest(night)  # a missing input is not a manifest error
    assert [j.name for j in manifest.jobs] == ["still", "beach", "clip"]

    result = runner.invoke(app, ["batch", str(night)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "[2/3] beach: FAILED" in out and "not found" in out
    assert "2 done, 0 skipped, 1 failed" in out
    summary_rows = [line for line in out.splitlines() if line.startswith("2  beach")]
    assert summary_rows and "FAILED" in summary_rows[0] and "not found" in summary_rows[0]

    # The other two finished, and play.
    from dreamvideo.decode import read_image

    assert read_image(tmp / "out" / "still.png").shape == (64, 96, 3)
    assert count_frames(tmp / "out" / "clip.mp4") == 5
    assert not (tmp / "out" / "beach.mp4").exists()
    assert not work_dir_for(tmp / "out" / "clip.mp4").exists()

    # A log per job, with the notes/timings/error.
    logs = {p.name: p.read_text() for p in (tmp / "night.logs").iterdir()}
    assert set(logs) == {"01-still.log", "02-beach.log", "03-clip.log"}
    assert "FAILED" in logs["02-beach.log"] and "not found" in logs["02-beach.log"]
    assert "done in" in logs["03-clip.log"]

    # The settings JSON records the manifest, the job, and the digest.
    doc = json.loads(settings_path(tmp / "out" / "clip.mp4").read_text())
    assert str(night) in doc["command"] and '"clip"' in doc["command"]
    assert doc["digest"] == manifest.jobs[2].settings.digest()
    assert doc["settings"]["dream"]["steps"] == 2

    # Run again: finished jobs are skipped (and say so), nothing is re-rendered.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp / "out").iterdir()}
    result = runner.invoke(app, ["batch", str(night)])
    assert result.exit_code == 1, result.output
    assert "[1/3] still: skipped: already done" in result.output
    assert "[3/3] clip: skipped: already done" in result.output
    assert "0 done, 2 skipped, 1 failed" in result.output
    assert {p: p.stat().st_mtime_ns for p in (tmp / "out").iterdir()} == stamps
    assert "skipped" in (tmp / "night.logs" / "01-still.log").read_text()

    # A settings JSON without the digest (e.g. from a plain `dreamvideo video`): recomputed from its settings.
    sidecar = settings_path(tmp / "out" / "clip.mp4")
    doc.pop("digest")
    sidecar.write_text(json.dumps(doc))
    summary = run_batch(load_manifest(night))
    assert [o.status for o in summary.outcomes] == ["skipped", "failed", "skipped"]

    # Changed settings of a finished job: that job (only) renders again.
    night.write_text(night.read_text().replace('output = "out/still.png"', 'output = "out/still.png"\nsteps = 3'))
    summary = run_batch(load_manifest(night))
    assert [o.status for o in summary.outcomes] == ["done", "failed", "skipped"]


def test_interrupted_batch_job_resumes_exactly(tmp_path: Path) -> None:
    make_clip(tmp_path / "clip.mp4", seconds=1.0, fps="10", size="96x64")
    night = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
kind = "video"
input = "clip.mp4"
output = "out/frames/"

[[job]]
kind = "video"
input = "clip.mp4"
output = "out/reference/"
""")

    def crash_at_frame_4(done: int, total: int | None) -> None:
        if done == 4 and not (tmp_path / "out" / "reference").exists():
            raise KeyboardInterrupt  # as Ctrl-C (or a power cut) would, mid-render

    with pytest.raises(KeyboardInterrupt):
        run_batch(load_manifest(night), on_progress=crash_at_frame_4)
    work = work_dir_for(tmp_path / "out" / "frames")
    assert len(list((work / "frames").glob("*.png"))) == 4
    assert "interrupted" in (tmp_path / "night.logs" / "01-frames.log").read_text()

    plan = run_batch(load_manifest(night), dry_run=True)
    assert [(o.status, o.resumed_frames, o.frames) for o in plan.outcomes] == [("would-resume", 4, 10),
                                                                               ("would-run", 0, 10)]

    events: list[str] = []
    summary = run_batch(load_manifest(night), on_event=events.append)
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    assert summary.outcomes[0].resumed_frames == 4 and summary.outcomes[1].resumed_frames == 0
    assert any("resuming: 4 finished frames" in e for e in events)
    resumed, reference = folder_frames(tmp_path / "out" / "frames"), folder_frames(tmp_path / "out" / "reference")
    assert len(resumed) == len(reference) == 10
    assert all(np.array_equal(a, b) for a, b in zip(resumed, reference))
    assert not work.exists()


# --- the real CLI, killed with SIGKILL ----------------------------------------------------------

CLI_FLAGS = ["--model", "efficientnet_lite0", "--max-side", "96", "--steps", "2", "--octaves", "1",
             "--set", "warm_steps=1", "--flow", "dis-fast"]


def _cli(clip: Path, output: Path, *extra: str) -> subprocess.Popen:
    output.mkdir(parents=True, exist_ok=True)  # PNG-frames output (render.py needs the folder to exist)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "dreamvideo.cli", "video", str(clip), "-o", f"{output}/",
                             *CLI_FLAGS, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _kill_after(runs: list[tuple[subprocess.Popen, Path]], frames: int = 3, timeout: float = 240.0) -> list[int]:
    """SIGKILL each render once its resume state records ``frames`` finished frames; returns each frames_done."""

    def done(output: Path) -> int:
        try:  # state.json is replaced atomically after each saved frame
            return int(json.loads((work_dir_for(output) / "state.json").read_text())["frames_done"])
        except (OSError, ValueError, KeyError):
            return 0

    pending = list(runs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for proc, output in list(pending):
            if done(output) >= frames:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                pending.remove((proc, output))
            else:
                assert proc.poll() is None, f"render ended before it could be killed: {proc.communicate()[1][-2000:]}"
        time.sleep(0.002)
    assert not pending, "renders made no frames in time"
    return [done(output) for _, output in runs]


@pytest.mark.slow
def test_sigkilled_render_resumes_exactly_and_changed_settings_start_over(tmp_path: Path) -> None:
    from dreamvideo.config import Settings
    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "clip.mp4", seconds=8.0, fps="10", size="96x64")  # long enough to be caught mid-way
    total = 80
    killed, changed, reference = tmp_path / "killed", tmp_path / "changed", tmp_path / "reference"
    runs = [(_cli(clip, killed), killed), (_cli(clip, changed), changed)]
    kept, kept_changed = _kill_after(runs)  # poll from the start: on a quiet machine a render takes < 1 s
    assert 3 <= kept < total and 3 <= kept_changed < total
    # What the CLI flags resolve to; the uninterrupted reference.
    settings = Settings().replace(model="efficientnet_lite0", max_side=96, steps=2, octaves=1, warm_steps=1,
                                  flow="dis-fast")
    reference.mkdir()
    assert render_video(clip, reference, settings).resumed_frames == 0
    first_old = (work_dir_for(changed) / "frames" / "000001.png").read_bytes()

    # Run again with the same settings: it resumes, and the frames equal the uninterrupted ones.
    notes: list[str] = []
    result = render_video(clip, killed, settings, on_note=notes.append)
    assert result.resumed_frames == kept and result.frames == total
    assert f"resuming: {kept} finished frames kept from the interrupted render" in notes
    doc = json.loads(settings_path(killed).read_text())
    assert doc["resumed_frames"] == kept and doc["frames"] == total
    a, b = folder_frames(killed), folder_frames(reference)
    assert len(a) == len(b) == total
    # Equal up to rounding: TensorFlow's multithreaded kernels can differ in the last bits between
    # processes under load (measured with InceptionV3, see README); a chain restarted from a raw
    # frame instead of the saved one would differ by the whole carried dream.
    diffs = [float(np.abs(x.astype(np.float32) - y).mean()) for x, y in zip(a, b)]
    assert max(diffs) < 0.5, f"resumed frames differ from an uninterrupted render: {diffs}"
    assert not work_dir_for(killed).exists()

    # Run again with --steps changed: the old frames are discarded, and it says so.
    notes.clear()
    result = render_video(clip, changed, settings.replace(steps=3), on_note=notes.append)
    assert "settings changed since the interrupted render: starting over" in notes
    assert result.resumed_frames == 0 and result.frames == total
    assert json.loads(settings_path(changed).read_text())["settings"]["dream"]["steps"] == 3
    from dreamvideo.decode import read_image

    old = tmp_path / "old.png"
    old.write_bytes(first_old)
    assert not np.array_equal(read_image(old), read_image(changed / "frame_000001.png"))  # no old frame reused


# --- presets --------------------------------------------------------------------------------------

SHIPPED = ["classic", "deep", "default", "fast-preview", "music-video", "psychedelic-zoom", "subtle"]


@pytest.mark.slow  # seven image renders
def test_every_shipped_preset_loads_and_renders(tmp_path: Path) -> None:
    from dreamvideo.config import merge
    from dreamvideo.presets import PACKAGE_DIR, list_presets, load_preset

    assert sorted(p.stem for p in PACKAGE_DIR.glob("*.toml")) == SHIPPED
    assert {p.name for p in list_presets()} >= set(SHIPPED)
    _image(tmp_path / "in.png", 64, 48)
    jobs = "".join(f"""
[[job]]
kind = "image"
input = "in.png"
output = "out/{name}.png"
preset = "{name}"
model = "tiny"
layers = ["conv2"]
max_side = 64
""" for name in SHIPPED)
    manifest = load_manifest(_write(tmp_path / "presets.toml", jobs))
    for job in manifest.jobs:
        expected = merge(load_preset(job.preset), {"model": "tiny", "layers": ["conv2"], "max_side": 64}, "test")
        assert job.settings == expected
    summary = run_batch(manifest)
    assert [o.status for o in summary.outcomes] == ["done"] * len(SHIPPED), [o.reason for o in summary.outcomes]
    for name in SHIPPED:
        doc = json.loads(settings_path(tmp_path / "out" / f"{name}.png").read_text())
        assert doc["model"] == "tiny" and doc["layers"] == ["conv2"]
        assert doc["settings"]["dream"]["steps"] == load_preset(name).dream.steps  # the preset's own look


# --- manifests are data ---------------------------------------------------------------------------

PWN = "__import__('os').system('touch {marker}')"


@pytest.mark.parametrize("body, message", [
    ('[[job]]\nname = "beach"\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n'
     '[[job]]\nname = "beach2"\nkind = "image"\ninput = "a.png"\noutput = "c.png"\nstepz = 4\n',
     """night.toml: job 2 ("beach2"): unknown key 'stepz' (did you mean 'steps'?)"""),
    ('[defaults]\ncolour = "red"\n[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n',
     "night.toml: [defaults]: unknown key 'colour'"),
    ('[defaults.dream]\nstepz = 3\n[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n',
     "unknown key 'stepz' in [dream]"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n[job.video]\nblendd = 0.1\n',
     "night.toml: job 1 (\"b\"): unknown key 'blendd' in [video]"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\nrm_rf = true\n',
     "job 1 (\"b\"): unknown key 'rm_rf'"),
    ('[[job]]\nkind = "movie"\ninput = "a.mp4"\noutput = "b.mp4"\n', "job 1 (\"b\"): kind 'movie' is unknown"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\n', "job 1: missing key 'output'"),
    ('[[job]]\nkind = "video"\noutput = "b.mp4"\n', "missing key 'input'"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.png"\n', "is not a video"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "a.png"\n', "is the input"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n'
     '[[job]]\nkind = "image"\ninput = "c.png"\noutput = "./b.png"\n', "is also job 1 (\"b\")'s"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\naudio = "x.wav"\n',
     "job 1 (\"b\"): audio = 'x.wav': audio is the encode setting (true/false); a zoom job's sound track is "
     "soundtrack = 'x.wav'"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\nsoundtrack = "x.wav"\n',
     "job 1 (\"b\"): soundtrack is for zoom jobs only"),
    ('job = "x"\n', "night.toml: job = 'x' is not a job: write each job as a [[job]] table"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\nsteps = -1\n', "steps must be within 0..1000, got -1"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\nmodel = "resnet"\n', "unknown model 'resnet'"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\nmodel = "tiny"\nlayers = ["mixed3"]\n',
     "unknown layer 'mixed3'"),
    ('[[job]]\nkind = "video"\ninput = "a.mp4"\noutput = "b.mp4"\npreset = "clasic"\n', "unknown preset 'clasic'"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\nencoder_preset = "fastest"\n',
     "encoder_preset 'fastest' is unknown"),
    ('[job]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n', "[[job]] (double brackets)"),
    ('jobs = []\n', "unknown key 'jobs' (did you mean 'job'?)"),
    ('[defaults]\nsteps = 2\n', "no jobs"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\nsteps = "{pwn}"\n', "is not a whole number"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\nloss = "{pwn}"\n', "loss \"__import__"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\nmodel = "{pwn}"\n', "unknown model"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\npreset = "{pwn}"\n', "not found"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\n{pwn_key} = 1\n', "unknown key"),
    ('[[job]]\nkind = "image"\ninput = "a.png"\noutput = "b.png"\npreset = "evil.toml"\n',
     "evil.toml: unknown key 'shell'"),
])
def test_manifest_errors_name_file_job_and_key(tmp_path: Path, body: str, message: str) -> None:
    marker = tmp_path / "pwned"
    pwn = PWN.format(marker=marker)
    (tmp_path / "evil.toml").write_text(f'shell = "{pwn}"\n')
    body = body.replace("{pwn}", pwn.replace('"', '\\"')).replace("{pwn_key}", json.dumps(pwn))
    path = _write(tmp_path / "night.toml", body)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    # Through the CLI: one line, exit 1, nothing rendered or logged, nothing executed.
    result = runner.invoke(app, ["batch", str(path)])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "night.logs").exists()
    assert not marker.exists()


def test_manifest_resolution_order_and_paths(tmp_path: Path) -> None:
    from dreamvideo.presets import load_preset

    (tmp_path / "sub").mkdir()
    path = _write(tmp_path / "sub" / "n.toml", """
[defaults]
preset = "deep"
max_side = 200
[defaults.video]
blend = 0.4

[[job]]
kind = "video"
input = "../clips/a.mp4"
output = "out/a/"
preset = "subtle"
steps = 5
overrides = { seed = 9 }

[[job]]
kind = "zoom"
input = "/abs/still.png"
output = "dive.gif"
soundtrack = "track.wav"
[job.zoom]
seconds = 2
fps = "24000/1001"
""")
    a, z = load_manifest(path).jobs
    subtle, deep = load_preset("subtle"), load_preset("deep")
    assert a.name == "a" and a.folder and a.output == tmp_path / "sub" / "out" / "a"
    assert a.input == tmp_path / "clips" / "a.mp4"
    assert a.settings.dream.octaves == subtle.dream.octaves  # the job's preset replaces the defaults'
    assert (a.settings.dream.steps, a.settings.dream.seed, a.settings.dream.max_side) == (5, 9, 200)
    assert a.settings.video.blend == 0.4  # [defaults] settings apply on top of any preset
    assert z.name == "dive" and z.preset == "deep" and z.settings.dream.octaves == deep.dream.octaves
    assert z.input == Path("/abs/still.png") and z.soundtrack == tmp_path / "sub" / "track.wav"
    assert str(z.settings.zoom.fps) == "24000/1001"


def test_dry_run_lists_estimates_and_renders_nothing(tmp_path: Path) -> None:
    _image(tmp_path / "in.png")
    make_clip(tmp_path / "clip.mp4", seconds=0.5, fps="10", size="96x64")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "still"
kind = "image"
input = "in.png"
output = "out/still.png"

[[job]]
name = "clip"
kind = "video"
input = "clip.mp4"
output = "out/clip.mp4"

[[job]]
name = "dive"
kind = "zoom"
input = "in.png"
output = "out/dive.mp4"
seconds = 1.5
fps = 8

[[job]]
name = "later"
kind = "video"
input = "usb/later.mp4"
output = "out/later.mp4"
""")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, ["batch", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[1/4] still: would render image" in out and "~1 frame," in out
    assert "[2/4] clip: would render video" in out and "~5 frames" in out
    assert "[3/4] dive: would render zoom" in out and "~12 frames" in out
    assert "[4/4] later:" in out and "will fail" in out
    assert "nothing was rendered" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no outputs, logs or work folders

    summary = run_batch(load_manifest(path), dry_run=True)
    assert [o.frames for o in summary.outcomes] == [1, 5, 12, None]
    assert all(o.estimated_seconds and o.estimated_seconds > 0 for o in summary.outcomes[:3])


def test_sample_manifest_is_valid_and_dry_runs() -> None:
    sample = REPO / "samples" / "night.toml"
    manifest = load_manifest(sample)
    assert {j.kind for j in manifest.jobs} == {"image", "video", "zoom"}
    assert {j.input.name for j in manifest.jobs} == {"pedestrians.mp4", "butterfly.jpg"}
    assert all(j.input.exists() for j in manifest.jobs)
    result = runner.invoke(app, ["batch", str(sample), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "~30 frames" in result.output and "nothing was rendered" in result.output


def test_zoom_job_renders_through_the_batch(tmp_path: Path) -> None:
    _image(tmp_path / "in.png")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "dive"
kind = "zoom"
input = "in.png"
output = "out/dive.mp4"
seconds = 1
fps = 4
""")
    summary = run_batch(load_manifest(path))
    assert [o.status for o in summary.outcomes] == ["done"], summary.outcomes[0].reason
    assert count_frames(tmp_path / "out" / "dive.mp4") == 4
    doc = json.loads(settings_path(tmp_path / "out" / "dive.mp4").read_text())
    assert doc["batch"]["job"] == "dive" and str(path) in doc["command"]
    assert [o.status for o in run_batch(load_manifest(path)).outcomes] == ["skipped"]


def test_unexpected_exception_is_one_line_with_traceback_in_log(tmp_path: Path, monkeypatch) -> None:
    import dreamvideo.render as render

    _image(tmp_path / "in.png")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "buggy"
kind = "image"
input = "in.png"
output = "out/buggy.png"

[[job]]
name = "fine"
kind = "image"
input = "in.png"
output = "out/fine.png"
""")
    real = render.render_image

    def flaky(input, output, settings, **kw):
        if Path(output).name == "buggy.png":
            return {}["no such key"]  # a bug, not a DreamVideoError
        return real(input, output, settings, **kw)

    monkeypatch.setattr(render, "render_image", flaky)
    result = runner.invoke(app, ["batch", str(path)])
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if "buggy: FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("[1/2] buggy: FAILED: KeyError: 'no such key' (traceback in ")
    assert failed[0].endswith("01-buggy.log)")
    assert "Traceback" not in result.output and "[2/2] fine: done" in result.output
    log = (tmp_path / "night.logs" / "01-buggy.log").read_text()
    assert "Traceback (most recent call last)" in log and "KeyError" in log
    assert (tmp_path / "out" / "fine.png").exists()


# --- outputs that would destroy inputs, duplicates through links, folders with dots -------------


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("spelling", ["plain", "dotted", "symlink", "hardlink", "folder"])
def test_output_over_any_jobs_input_refuses_the_whole_manifest(tmp_path: Path, spelling: str) -> None:
    fruits = _image(tmp_path / "fruits.png")
    other = _image(tmp_path / "other.png", 64, 48)
    before = _digest(fruits)
    (tmp_path / "sub").mkdir()
    out = {"plain": "fruits.png", "dotted": "./sub/../fruits.png", "symlink": "link.png", "hardlink": "hard.png",
           "folder": "."}[spelling]
    if spelling == "symlink":
        (tmp_path / "link.png").symlink_to(fruits)
    if spelling == "hardlink":
        (tmp_path / "hard.png").hardlink_to(fruits)
    kind = "video" if spelling == "folder" else "image"
    job_input = "clip.mp4" if spelling == "folder" else "other.png"
    if spelling == "folder":  # a PNG-frames output folder that holds job 2's input
        make_clip(tmp_path / "sub" / "clip.mp4", seconds=0.2, fps="10", size="96x64")
        job_input, out = "sub/clip.mp4", "sub/"
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + f"""
[[job]]
name = "first"
kind = "{kind}"
input = "{job_input}"
output = "{out}"

[[job]]
name = "second"
kind = "image"
input = "fruits.png"
output = "second.png"
""")
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    msg = str(info.value)
    assert msg.startswith(f'{path}: job 1 ("first"): output ') and "would overwrite" in msg, msg
    assert ("its own input" if spelling == "folder" else "job 2 (\"second\")'s input") in msg
    result = runner.invoke(app, ["batch", str(path)])
    assert result.exit_code == 1 and "would overwrite" in result.output and "Traceback" not in result.output
    assert _digest(fruits) == before and other.exists()
    assert not (tmp_path / "second.png").exists() and not (tmp_path / "night.logs").exists()


def test_two_jobs_writing_one_file_through_a_symlinked_folder_are_duplicates(tmp_path: Path) -> None:
    _image(tmp_path / "in.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out", target_is_directory=True)
    path = _write(tmp_path / "night.toml", """
[[job]]
kind = "image"
input = "in.png"
output = "out/a.png"

[[job]]
name = "again"
kind = "image"
input = "in.png"
output = "alias/a.png"
""")
    with pytest.raises(ConfigError, match=r"job 2 \(\"again\"\): output '.*alias/a.png' is also job 1 \(\"a\"\)'s"):
        load_manifest(path)


def test_failed_png_frames_job_leaves_no_folder_under_the_final_name(tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_text("not a video at all\n")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "frames"
kind = "video"
input = "broken.mp4"
output = "out/frames/"
""")
    summary = run_batch(load_manifest(path))
    assert [o.status for o in summary.outcomes] == ["failed"]
    assert not (tmp_path / "out" / "frames").exists()
    assert not work_dir_for(tmp_path / "out" / "frames").exists()


def test_png_folder_with_a_dot_dry_runs_and_renders(tmp_path: Path) -> None:
    make_clip(tmp_path / "clip.mp4", seconds=0.4, fps="10", size="96x64")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
kind = "video"
input = "clip.mp4"
output = "out/run.6/"
""")
    (job,) = load_manifest(path).jobs
    assert job.folder and job.target.kind == "frames" and job.name == "run.6"
    result = runner.invoke(app, ["batch", "--dry-run", str(path)])
    assert result.exit_code == 0, result.output
    assert "[1/1] run.6: would render video" in result.output and "~4 frames" in result.output
    summary = run_batch(load_manifest(path))
    assert [o.status for o in summary.outcomes] == ["done"], summary.outcomes[0].reason
    assert len(list((tmp_path / "out" / "run.6").glob("frame_*.png"))) == 4
    doc = json.loads((tmp_path / "out" / "run.6.settings.json").read_text())
    assert doc["batch"] == {"manifest": str(path), "job": "run.6", "index": 1}  # written once, by the renderer
    assert [o.status for o in run_batch(load_manifest(path)).outcomes] == ["skipped"]


def test_video_job_with_audio_false_drops_the_sound(tmp_path: Path) -> None:
    from dreamvideo.probe import probe

    make_clip(tmp_path / "clip.mp4", seconds=0.4, fps="10", size="96x64", audio=True)
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "silent"
kind = "video"
input = "clip.mp4"
output = "silent.mp4"
audio = false

[[job]]
name = "loud"
kind = "video"
input = "clip.mp4"
output = "loud.mp4"
""")
    silent, loud = load_manifest(path).jobs
    assert silent.settings.encode.audio is False and loud.settings.encode.audio is True
    summary = run_batch(load_manifest(path))
    assert [o.status for o in summary.outcomes] == ["done", "done"], [o.reason for o in summary.outcomes]
    assert not probe(tmp_path / "silent.mp4").has_audio and probe(tmp_path / "loud.mp4").has_audio


def test_a_job_that_cannot_be_planned_fails_alone_in_a_dry_run(tmp_path: Path, monkeypatch) -> None:
    import dreamvideo.batch as batch
    from dreamvideo.errors import OutputError

    _image(tmp_path / "in.png")
    path = _write(tmp_path / "night.toml", TINY_DEFAULTS + """
[[job]]
name = "odd"
kind = "image"
input = "in.png"
output = "odd.png"

[[job]]
name = "fine"
kind = "image"
input = "in.png"
output = "fine.png"
""")
    real = batch.estimate

    def estimate(job, loaded=None):
        if job.name == "odd":
            raise OutputError("output 'odd.png' cannot be planned")
        return real(job, loaded)

    monkeypatch.setattr(batch, "estimate", estimate)
    result = runner.invoke(app, ["batch", "--dry-run", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"[1/2] odd: FAILED: {path}: job 1 (\"odd\"): output 'odd.png' cannot be planned" in result.output
    assert "[2/2] fine: would render image" in result.output
    assert not (tmp_path / "odd.png").exists() and not (tmp_path / "fine.png").exists()
