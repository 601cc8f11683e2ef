"""`dreamvideo image`, models and weights: the foundation, checked as a user would."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo import model as model_mod
from dreamvideo.cli import app
from dreamvideo.config import DreamConfig
from dreamvideo.decode import read_image, resize_max_side
from dreamvideo.dream import get_engine
from helpers import MEDIA, need

runner = CliRunner()


def gain(cfg: DreamConfig, before: np.ndarray, after: np.ndarray) -> float:
    engine = get_engine(cfg)
    return engine.activation(after) / engine.activation(before)


@pytest.mark.slow
def test_inception_dream_at_256_px_is_strong(tmp_path, inception_weights):
    """Real InceptionV3 weights: activation at least 2x the input's, mean change at least 10/255."""
    weights = inception_weights
    src = need(MEDIA / "butterfly.jpg")
    out = tmp_path / "dream.png"
    result = runner.invoke(app, ["image", str(src), "-o", str(out), "--weights", str(weights), "--max-side", "256"])
    assert result.exit_code == 0, result.output
    before = resize_max_side(read_image(src), 256)
    after = read_image(out)
    assert after.shape == before.shape
    assert gain(DreamConfig(weights=str(weights)), before, after) >= 2.0
    assert np.abs(after.astype(float) - before).mean() >= 10
    assert (tmp_path / "dream.settings.json").is_file()


def test_same_seed_same_image_other_seed_differs(tmp_path):
    src = need(MEDIA / "fruits.jpg")
    outs = []
    for i, seed in enumerate(["3", "3", "4"]):
        out = tmp_path / f"o{i}.png"
        r = runner.invoke(app, ["image", str(src), "-o", str(out), "--model", "tiny", "--max-side", "96",
                                "--steps", "3", "--seed", seed])
        assert r.exit_code == 0, r.output
        outs.append(read_image(out))
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


@pytest.mark.slow
def test_offline_default_falls_back_to_efficientnet_and_says_so(tmp_path, monkeypatch):
    """No network, no InceptionV3 weights: the default renders a real dream with the bundled model."""
    src = need(MEDIA / "butterfly.jpg")
    spec = model_mod.get_spec("inception_v3")

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setitem(model_mod._REGISTRY, "inception_v3", dataclasses.replace(spec, keras_download=offline))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    out = tmp_path / "dream.png"
    result = runner.invoke(app, ["image", str(src), "-o", str(out), "--max-side", "256"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "efficientnet_lite0" in notes[0] and "InceptionV3" in notes[0], result.output
    before = resize_max_side(read_image(src), 256)
    after = read_image(out)
    assert gain(DreamConfig(model="efficientnet_lite0"), before, after) >= 2.0
    assert np.abs(after.astype(float) - before).mean() >= 10


def test_explicit_model_without_weights_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    src = need(MEDIA / "butterfly.jpg")
    spec = model_mod.get_spec("vgg16")

    def offline():
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setitem(model_mod._REGISTRY, "vgg16", dataclasses.replace(spec, keras_download=offline))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    result = runner.invoke(app, ["image", str(src), "-o", str(tmp_path / "o.png"), "--model", "vgg16"])
    assert result.exit_code == 1
    assert "vgg16" in result.output and "--weights" in result.output and "efficientnet_lite0" in result.output
    assert not (tmp_path / "o.png").exists()


def test_weights_in_keras_cache_are_loaded_by_path(tmp_path, monkeypatch, inception_weights):
    """A file already in $KERAS_HOME/models under Keras' own name is used without any download."""
    weights = inception_weights
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    (cache / model_mod.get_spec("inception_v3").keras_file).symlink_to(weights)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    src = model_mod.find_weights(model_mod.get_spec("inception_v3"))
    assert src.kind == "cached" and src.path.parent == cache
    r = runner.invoke(app, ["models", "inception_v3"])
    assert "cached" in r.output


@pytest.mark.parametrize("case", ["missing", "not-image", "empty", "no-folder", "same-as-input", "bad-layer",
                                  "bad-preset", "preset-bad-key",
                                  pytest.param("bad-weights", marks=pytest.mark.slow),  # builds InceptionV3
                                  "bad-extension"])
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, case):
    good = tmp_path / "in.png"
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = 200
    import cv2

    cv2.imwrite(str(good), img)
    out = tmp_path / "out.png"
    args = ["image", str(good), "-o", str(out), "--model", "tiny", "--steps", "1"]
    if case == "missing":
        args[1] = str(tmp_path / "nope.png")
    elif case == "not-image":
        (tmp_path / "x.png").write_text("hello")
        args[1] = str(tmp_path / "x.png")
    elif case == "empty":
        (tmp_path / "e.jpg").write_bytes(b"")
        args[1] = str(tmp_path / "e.jpg")
    elif case == "no-folder":
        out = tmp_path / "missing" / "out.png"
        args[3] = str(out)
    elif case == "same-as-input":
        out = good
        args[3] = str(good)
    elif case == "bad-layer":
        args += ["--layers", "conv9"]
    elif case == "bad-preset":
        args += ["--preset", "no-such-look"]
    elif case == "preset-bad-key":
        p = tmp_path / "mine.toml"
        p.write_text('description = "x"\n[dream]\nstepz = 3\n')
        args += ["--preset", str(p)]
    elif case == "bad-weights":
        w = tmp_path / "w.weights.h5"
        w.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
        args = ["image", str(good), "-o", str(out), "--model", "inception_v3", "--weights", str(w)]
    elif case == "bad-extension":
        out = tmp_path / "out.txt"
        args[3] = str(out)
    before = good.read_bytes()
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    if case == "bad-layer":
        assert "conv1" in lines[0] and "conv3" in lines[0]  # lists the valid ones
    if case == "preset-bad-key":
        assert "mine.toml" in lines[0] and "stepz" in lines[0]
    assert good.read_bytes() == before
    if case != "same-as-input":
        assert not out.exists()


def test_help_does_not_import_tensorflow():
    code = "import sys; from dreamvideo.cli import app; from typer.testing import CliRunner; " \
           "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; " \
           "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_version_and_every_command_has_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("dreamvideo ")
    for command in ("image", "video", "zoom", "batch", "presets", "models", "doctor", "analyze"):
        r = runner.invoke(app, [command, "--help"])
        assert r.exit_code == 0, (command, r.output)


def test_models_lists_weights_sources_and_layers():
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0
    for name in ("inception_v3", "vgg16", "mobilenet_v2", "efficientnet_lite0"):
        assert name in r.output
    assert "bundled" in r.output
    r = runner.invoke(app, ["models", "inception_v3", "--list-layers"])
    assert "mixed0" in r.output and "mixed10" in r.output
    r = runner.invoke(app, ["models", "nope"])
    assert r.exit_code == 1 and "unknown model" in r.output


def test_doctor_reports_each_part():
    r = runner.invoke(app, ["doctor"])
    assert "ffmpeg" in r.output and "tensorflow" in r.output and "efficientnet_lite0" in r.output
    assert "keras cache" in r.output
    assert r.exit_code == 0, r.output


def test_presets_list_and_show():
    r = runner.invoke(app, ["presets"])
    names = [line.split()[0] for line in r.output.splitlines() if line.strip()]
    assert {"default", "classic", "subtle", "deep", "psychedelic-zoom", "music-video", "fast-preview"} <= set(names)
    r = runner.invoke(app, ["presets", "show", "classic"])
    assert r.exit_code == 0 and 'layers = ["mixed3", "mixed5"]' in r.output
    r = runner.invoke(app, ["presets", "show", "nope"])
    assert r.exit_code == 1 and "unknown preset" in r.output


def test_grayscale_rgba_and_16bit_inputs(tmp_path):
    import cv2

    gray = (np.arange(96 * 80) % 251).reshape(80, 96).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 128)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    cv2.imwrite(str(tmp_path / "w.png"), (gray.astype(np.uint16) * 257))
    for name in ("g.png", "a.png", "w.png"):
        out = tmp_path / f"out-{name}"
        r = runner.invoke(app, ["image", str(tmp_path / name), "-o", str(out), "--model", "tiny", "--steps", "2"])
        assert r.exit_code == 0, r.output
        assert read_image(out).shape == (80, 96, 3)
