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
