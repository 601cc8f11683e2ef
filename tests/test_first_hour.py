"""What a new user meets in the first hour: sizes below a model's limit, odd sizes, dry-run times, the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo import batch as batch_mod
from dreamvideo import dream as dream_mod
from dreamvideo.cli import app
from dreamvideo.encode import write_image
from dreamvideo.probe import probe

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


@pytest.mark.parametrize("command", ["image", "video"])
def test_max_side_below_the_models_limit_is_one_line_before_any_model_loads(tmp_path, command):
    dream_mod.clear_cache()
    src = SAMPLES / ("butterfly.jpg" if command == "image" else "pedestrians.mp4")
    out = tmp_path / ("d.png" if command == "image" else "d.mp4")
    r = runner.invoke(app, [command, str(src), "-o", str(out), "--max-side", "64", "--model", "efficientnet_lite0"])
    assert r.exit_code == 1, r.output
    assert len(r.output.splitlines()) == 1, r.output
    # butterfly 493x356 -> 64x46; pedestrians 384x288 -> 64x48; 64 px short side needs max_side 89 / 86
    need = 89 if command == "image" else 86
    assert "below efficientnet_lite0's smallest side of 64 px" in r.output
    assert f"use --max-side {need} or more" in r.output
    assert not dream_mod._MODELS  # refused before the model was loaded
    assert not out.exists() and not list(tmp_path.iterdir())
    r = runner.invoke(app, [command, str(src), "-o", str(out), "--max-side", str(need), "--model", "tiny",
                            "--steps", "1"])
    assert r.exit_code == 0, r.output


def test_zoom_reports_the_size_the_file_has(tmp_path):
    out = tmp_path / "dive.mp4"
    r = runner.invoke(app, ["zoom", "--noise", "-o", str(out), "--size", "96x69", "--seconds", "0.3", "--fps", "10",
                            "--model", "tiny", "--steps", "1"])
    assert r.exit_code == 0, r.output
    info = probe(out)
    assert (info.width, info.height) == (96, 70)  # H.264 pads odd sizes to even
    wrote = r.stdout.splitlines()[0]
    assert "96x70" in wrote, r.output
    doc = json.loads(out.with_name("dive.settings.json").read_text())
    assert doc["size"] == [96, 70]


def test_dry_run_counts_the_fixed_start_up_cost(tmp_path):
    img = tmp_path / "a.png"
    write_image(img, np.zeros((64, 96, 3), np.uint8))
    manifest = tmp_path / "m.toml"
    manifest.write_text('[defaults]\nmodel = "efficientnet_lite0"\nsteps = 2\noctaves = 1\n'
                        '[[job]]\nkind = "image"\ninput = "a.png"\noutput = "out/1.png"\n'
                        '[[job]]\nkind = "image"\ninput = "a.png"\noutput = "out/2.png"\n')
    summary = batch_mod.run_batch(batch_mod.load_manifest(manifest), dry_run=True)
    first, second = (o.estimated_seconds for o in summary.outcomes)
    fixed = batch_mod.SECONDS_TENSORFLOW_IMPORT + batch_mod.SECONDS_MODEL_LOAD["efficientnet_lite0"]
    assert first >= fixed > 0  # the first job pays TensorFlow's import and the model's load
    assert second < 1.0 and first - second == pytest.approx(fixed, abs=1e-6)  # the second job pays neither


def _beat_recipe():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_beat", SAMPLES / "make_beat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rhythmic_sample_has_its_onsets_where_the_recipe_put_them():
    from fractions import Fraction

    from dreamvideo.audio import analyze_file

    recipe = _beat_recipe()
    fps = probe(SAMPLES / "beat.mp4").fps
    assert fps == Fraction(10)
    features = analyze_file(SAMPLES / "beat.mp4", fps)
    expected = [int(t * fps) for t in recipe.EVENTS]  # the frame each hit lands in
    found = list(features.onset_frames)
    assert len(found) == len(expected), (found, expected)
    assert all(abs(int(f) - e) <= 1 for f, e in zip(found, expected)), (found, expected)
    # Loudness pulses: every kick's frame is loud, the frames just before the first hit are silent.
    kicks = [int(t * fps) for t in recipe.KICKS]
    assert min(features.loudness[kicks]) > 0.8 and max(features.loudness[:2]) < 0.05
    assert (SAMPLES / "beat.mp4").stat().st_size < 1_000_000
    assert np.array_equal(recipe.track(), recipe.track())  # the recipe is deterministic


def test_import_dreamvideo_lists_its_api_without_tensorflow():
    code = ("import sys, dreamvideo; names = dir(dreamvideo); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules); print(' '.join(names))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    first, names = out.splitlines()
    assert first == "False False"
    api = {"Settings", "load_preset", "render_image", "render_video", "render_zoom", "dream_image", "load_manifest",
           "run_batch", "Manifest", "BatchSummary", "RenderResult", "DreamVideoError", "ConfigError", "InputError",
           "ModelError", "install_weights"}
    assert api <= set(names.split())
    import dreamvideo

    assert api <= set(dreamvideo.__all__)
    assert set(dreamvideo.__all__) == {"__version__", *dreamvideo._LAZY}  # the literal list and the loader agree
    for name in dreamvideo.__all__:
        value = getattr(dreamvideo, name)
        if callable(value) and not isinstance(value, type):
            doc = value.__doc__ or ""
            assert doc.strip(), name  # every public function is documented


def test_api_script_renders_a_clip_with_a_progress_callback(tmp_path):
    """The README's Python example, at a tiny size."""
    import dreamvideo

    settings = dreamvideo.merge(dreamvideo.load_preset("fast-preview"),
                                {"model": "tiny", "max_side": 96, "max_frames": 3, "steps": 1}, source="test")
    seen: list[tuple[int, int | None]] = []
    result = dreamvideo.render_video(SAMPLES / "beat.mp4", tmp_path / "out.mp4", settings,
                                     on_progress=lambda done, total: seen.append((done, total)))
    assert result.frames == 3 and seen[-1][0] == 3
    assert (result.width, result.height) == (probe(result.output).width, probe(result.output).height)
    with pytest.raises(dreamvideo.InputError):
        dreamvideo.render_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", settings)


def test_music_video_preset_pulses_on_the_rhythmic_sample():
    """The preset's reactions on samples/beat.mp4: step size high on every kick, low between; blend dips on hits."""
    from dreamvideo.audio import analyze_file
    from dreamvideo.config import RULES
    from dreamvideo.presets import load_preset
    from dreamvideo.schedule import Timeline, parse_all

    settings = load_preset("music-video")
    fps = probe(SAMPLES / "beat.mp4").fps
    features = analyze_file(SAMPLES / "beat.mp4", fps)
    schedules, reactions = parse_all(settings.schedule, settings.react, RULES)
    timeline = Timeline(schedules, reactions, fps, features.n_frames, features)
    step = timeline.series("step_size")
    blend = timeline.series("blend")
    recipe = _beat_recipe()
    kicks = [int(t * fps) for t in recipe.KICKS]
    lulls = [k - 1 for k in kicks[1:]]  # the frame before each later kick: the last kick has faded
    assert min(step[kicks]) > 1.5 * max(step[lulls]), (step, kicks)
    assert step.max() - step.min() > 0.5 * (step.max() + step.min()) / 2  # a pulse, not a wobble
    hits = [int(t * fps) for t in recipe.EVENTS]
    assert max(blend[hits]) < min(blend[:2])  # onsets kick the dream: less of the raw frame on each hit
