"""Offline as a first-class state: one quiet line, no repeated downloads, `models install`, doctor and GPUs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import INCEPTION_WEIGHTS, need
from typer.testing import CliRunner

from dreamvideo import model as model_mod
from dreamvideo.cli import app
from dreamvideo.dream import clear_cache
from dreamvideo.encode import write_image

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


class CountingDownload:
    """Stands in for Keras' download offline: prints Keras' own line to stdout, then fails as Keras does."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self):
        self.calls += 1
        print("Downloading data from https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/x.h5")
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -3] Temporary failure in name resolution")


@pytest.fixture
def offline(tmp_path, monkeypatch) -> CountingDownload:
    """No InceptionV3 anywhere (empty Keras cache, nothing installed) and a download that fails, counted."""
    download = CountingDownload()
    spec = model_mod.get_spec("inception_v3")
    monkeypatch.setitem(model_mod._REGISTRY, "inception_v3", dataclasses.replace(spec, keras_download=download))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.delenv("DREAMVIDEO_OFFLINE", raising=False)
    monkeypatch.delenv("DREAMVIDEO_WEIGHTS", raising=False)
    clear_cache()
    yield download
    clear_cache()


def small_image(tmp_path: Path) -> Path:
    """96x80: above every model's smallest side (InceptionV3: 75 px)."""
    rng = np.random.default_rng(3)
    path = tmp_path / "in.png"
    write_image(path, rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))
    return path


def test_offline_image_prints_one_line_and_never_retries(tmp_path, offline):
    src = small_image(tmp_path)
    for run in range(2):
        clear_cache()  # a new process each time, as far as the model is concerned
        out = tmp_path / f"dream{run}.png"
        r = runner.invoke(app, ["image", str(src), "-o", str(out), "--steps", "1", "--octaves", "1"])
        assert r.exit_code == 0, r.output
        lines = r.output.splitlines()  # stdout and stderr together
        assert len(lines) == 2, r.output
        assert lines[0].startswith("note: using efficientnet_lite0") and "models install inception_v3" in lines[0]
        assert lines[1].startswith(f"wrote {out}")
        assert "Downloading data" not in r.output
    assert offline.calls == 1  # the second run made no download attempt
    assert model_mod.failed_download_marker(model_mod.get_spec("inception_v3")).is_file()


def test_offline_env_skips_the_download(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("DREAMVIDEO_OFFLINE", "1")
    r = runner.invoke(app, ["image", str(small_image(tmp_path)), "-o", str(tmp_path / "d.png"), "--steps", "1",
                            "--octaves", "1"])
    assert r.exit_code == 0, r.output
    assert offline.calls == 0 and "DREAMVIDEO_OFFLINE is set" in r.output.splitlines()[0]


def test_models_and_doctor_give_one_answer_after_a_failed_download(tmp_path, offline):
    r = runner.invoke(app, ["models", "inception_v3"])
    assert "downloadable" not in r.output and "not downloaded yet" in r.output
    r = runner.invoke(app, ["image", str(small_image(tmp_path)), "-o", str(tmp_path / "d.png"), "--preset", "classic",
                            "--steps", "1", "--octaves", "1"])
    assert r.exit_code == 1 and len(r.output.splitlines()) == 1, r.output
    assert "not available offline" in r.output and "models install inception_v3" in r.output
    models = runner.invoke(app, ["models", "inception_v3"]).output
    doctor = runner.invoke(app, ["doctor"]).output
    detail = next(line for line in models.splitlines() if "weights:" in line).split(" - ", 1)[1]
    assert detail.startswith("not available offline") and "models install inception_v3" in detail
    assert f"[FIX] model inception_v3: {detail}" in doctor.splitlines()
    assert offline.calls == 1


def test_retry_download_forgets_the_failure_and_tries_once(tmp_path, offline):
    runner.invoke(app, ["image", str(small_image(tmp_path)), "-o", str(tmp_path / "d.png"), "--steps", "1",
                        "--octaves", "1"])
    assert offline.calls == 1
    r = runner.invoke(app, ["models", "--retry-download"])
    assert offline.calls == 2  # asked again: tried again
    assert r.exit_code == 1 and "forgot failed downloads of inception_v3" in r.output
    assert r.output.splitlines()[-1].startswith("error: inception_v3 ImageNet weights are not available offline")


def test_layers_of_the_missing_model_name_it(tmp_path, offline):
    r = runner.invoke(app, ["image", str(small_image(tmp_path)), "-o", str(tmp_path / "d.png"),
                            "--layers", "mixed3,mixed5", "--steps", "1"])
    assert r.exit_code == 1, r.output
    error = r.output.splitlines()[-1]
    assert "inception_v3's" in error and "models install inception_v3" in error, r.output


def test_install_makes_classic_work_offline_with_no_flag(tmp_path, offline):
    weights = need(INCEPTION_WEIGHTS)
    r = runner.invoke(app, ["models", "install", "inception_v3", str(weights)])
    assert r.exit_code == 0, r.output
    target = model_mod.installed_path(model_mod.get_spec("inception_v3"))
    assert target.is_file() and target.stat().st_size == weights.stat().st_size
    assert not list(target.parent.glob("*.partial"))
    assert "installed" in runner.invoke(app, ["models", "inception_v3"]).output
    clear_cache()
    src = tmp_path / "in.png"
    write_image(src, np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    out = tmp_path / "classic.png"
    r = runner.invoke(app, ["image", str(src), "-o", str(out), "--preset", "classic", "--steps", "2", "--octaves", "1"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [r.output.splitlines()[-1]] and "inception_v3" in r.output  # no note at all
    doc = json.loads(out.with_name("classic.settings.json").read_text())
    assert doc["model"] == "inception_v3" and "installed" in doc["weights"]
    assert offline.calls == 0


def test_install_refuses_a_file_that_does_not_fit(tmp_path):
    import keras

    inp = keras.Input((None, None, 3))
    other = keras.Model(inp, keras.layers.Conv2D(4, 3, name="c")(inp))
    wrong = tmp_path / "other.weights.h5"
    other.save_weights(wrong)
    r = runner.invoke(app, ["models", "install", "inception_v3", str(wrong)])
    assert r.exit_code == 1 and len(r.output.splitlines()) == 1, r.output
    assert "does not fit model inception_v3" in r.output
    folder = model_mod.weights_dir()
    assert not folder.exists() or not [p for p in folder.iterdir() if "inception" in p.name]
    r = runner.invoke(app, ["models", "install", "inception_v3", str(tmp_path / "missing.h5")])
    assert r.exit_code == 1 and "not found" in r.output


def test_settings_json_records_the_device(tmp_path):
    out = tmp_path / "d.png"
    r = runner.invoke(app, ["image", str(small_image(tmp_path)), "-o", str(out), "--model", "tiny", "--steps", "1"])
    assert r.exit_code == 0, r.output
    device = json.loads(out.with_name("d.settings.json").read_text())["device"]
    assert device == "CPU" or device.startswith("GPU "), device


def _child_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "DREAMVIDEO_CACHE": os.environ["DREAMVIDEO_CACHE"],
           # A proxy that refuses at once: offline on every machine, also one with a network.
           "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    env.pop("DREAMVIDEO_OFFLINE", None)
    env.pop("DREAMVIDEO_WEIGHTS", None)
    return env


def test_real_cli_offline_prints_exactly_one_line_before_its_result(tmp_path):
    """A fresh process with Keras' real download failing: stdout and stderr together are two lines."""
    src = small_image(tmp_path)
    out = tmp_path / "dream.png"
    proc = subprocess.run([sys.executable, "-m", "dreamvideo.cli", "image", str(src), "-o", str(out),
                           "--steps", "1", "--octaves", "1"], cwd=ROOT, env=_child_env(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout
    assert len(lines) == 2 and lines[0].startswith("note: using efficientnet_lite0"), proc.stdout
    assert lines[1].startswith(f"wrote {out}")
    assert model_mod.failed_download_marker(model_mod.get_spec("inception_v3")).is_file()


def test_doctor_is_fast_without_a_gpu():
    """No GPU: doctor reads metadata only (TensorFlow's import is the slow part) and says there is none."""
    from dreamvideo.doctor import gpu_cards

    if gpu_cards():
        pytest.skip("this machine has a GPU: doctor imports TensorFlow to test it")
    code = "import sys; from dreamvideo.doctor import run_checks; c = run_checks(); " \
           "print('tensorflow' in sys.modules); print(*[f'{x.name}: {x.detail}' for x in c], sep='\\n')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "False", out
    assert any(line.startswith("gpu: none found") for line in lines), out
