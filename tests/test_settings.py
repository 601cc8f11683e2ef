"""The settings authority: every setting, every hostile value, every entry point.

Generated from config.RULES, so a new setting is covered without new test code: NaN, infinities,
huge, negative, wrongly typed and empty values through --set, a preset and a manifest each give
one line, exit 1, no traceback, nothing written, and no model loaded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo import config
from dreamvideo.cli import app
from dreamvideo.config import RULES, Settings, merge
from dreamvideo.errors import ConfigError

runner = CliRunner()


def _bad_values(name: str) -> list[str]:
    """TOML spellings of values the rule must refuse (each a scalar a user could type)."""
    rule = RULES[name]
    wrong_type = ['"word"', "true", "[1, 2]"]
    if rule.kind in ("int", "float"):
        out = ["nan", "inf", "-inf", "1e400", '""', *wrong_type]
        out.append(repr(rule.hi * 1000 + 1e6))  # huge
        out.append(repr(rule.lo - 1 if rule.lo >= 0 else rule.lo * 2 - 1))  # below the range (negative for most)
        if rule.kind == "int":
            out.append("2.5")
        return out
    if rule.kind == "fps":
        return ["nan", "inf", "0", "-30", "1e9", '"fast"', "true", '""']
    if rule.kind == "size":
        return ['"1e400x5"', '"100000x100000"', '"-5x5"', '"wide"', "5", '""', "nan"]
    if rule.kind == "pair":
        return ['"nan,0"', '"inf,0"', '"1e9,0"', '"a,b"', "5", '""', "[1, 2, 3]"]
    if rule.kind == "bool":
        return ['"maybe"', "5", '""', "nan", "[true]"]
    if rule.kind == "choice":
        return ['"no-such-choice"', "5", "true", '""', "nan"]
    if rule.kind == "layers":
        return ["5", '""', "[]", "[1, 2]", "true", '"mixed4:x"', '"mixed3=1e400"']
    if rule.kind == "class":  # an ImageNet index or name: "5" is a valid class
        return ["-1", "1000", "2.5", '"no-such-class"', '""', "true", "[1]", "nan"]
    return ["5", '""', "true", "[1]", "nan"]  # str


CASES = [(name, value) for name in RULES for value in _bad_values(name)]
# One bad value per setting (cycling through the kinds of badness) for the quick loop; CI runs all.
QUICK = [(name, _bad_values(name)[i % len(_bad_values(name))]) for i, name in enumerate(RULES)]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "in.png"
    cv2.imwrite(str(path), np.full((64, 64, 3), 120, np.uint8))
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to load a model fails the test: bad settings must be refused before that."""
    from dreamvideo import model

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded before the settings were checked")

    monkeypatch.setattr(model, "load_model", refuse)


def _section(name: str) -> str:
    return config.FLAT_INDEX[name]


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("name,value", CASES, ids=[f"{n}={v}" for n, v in CASES])
def test_every_bad_value_is_refused_by_merge_flat_and_sectioned(name, value):
    import tomllib

    parsed = tomllib.loads(f"v = {value}")["v"]
    for data in ({name: parsed}, {_section(name): {name: parsed}}):
        with pytest.raises(ConfigError, match=name):
            merge(Settings(), data, source="test")


@pytest.mark.parametrize("source", ["--set", "preset", "manifest"])
@pytest.mark.parametrize("name,value", QUICK, ids=[f"{n}={v}" for n, v in QUICK])
def test_bad_value_is_one_line_before_any_model(tmp_path, image, no_model, source, name, value):
    _run_bad_value(tmp_path, image, source, name, value)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["--set", "preset", "manifest"])
@pytest.mark.parametrize("name,value", CASES, ids=[f"{n}={v}" for n, v in CASES])
def test_every_bad_value_is_one_line_before_any_model(tmp_path, image, no_model, source, name, value):
    _run_bad_value(tmp_path, image, source, name, value)


def _run_bad_value(tmp_path: Path, image: Path, source: str, name: str, value: str) -> None:
    out = tmp_path / "out.png"
    before = sorted(p.name for p in tmp_path.iterdir())
    if source == "--set":
        args = ["image", str(image), "-o", str(out), "--set", f"{name}={value}"]
    elif source == "preset":
        preset = tmp_path / "look.toml"
        preset.write_text(f'description = "x"\n[{_section(name)}]\n{name} = {value}\n')
        args = ["image", str(image), "-o", str(out), "--preset", str(preset)]
    else:
        manifest = tmp_path / "night.toml"
        manifest.write_text(f'[[job]]\nkind = "image"\ninput = "{image.name}"\noutput = "out.png"\n{name} = {value}\n')
        args = ["batch", str(manifest)]
    before = sorted(p.name for p in tmp_path.iterdir())
    line = _one_error_line(runner.invoke(app, args))
    assert name in line  # names the setting
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not out.exists()


@pytest.mark.parametrize("name", [n for n, r in RULES.items() if r.kind in ("int", "float")])
def test_numeric_error_states_the_range(name):
    rule = RULES[name]
    with pytest.raises(ConfigError) as err:
        merge(Settings(), {name: rule.hi * 1000 + 1e6}, source="test")
    assert rule.describe() in str(err.value)


@pytest.mark.parametrize("name", list(RULES))
def test_defaults_satisfy_their_own_rules(name):
    """Every default passes its rule, and re-merging it changes nothing (the table and the fields agree)."""
    value = config.default_value(name)
    s = merge(Settings(), {name: value}, source="test")
    assert s == Settings()
    rule = RULES[name]
    if rule.kind in ("int", "float") and value is not None:
        assert math.isfinite(value) and rule.ok(value)
    if rule.kind != "bool" and not rule.optional:
        assert value is not None


@pytest.mark.parametrize("name", [n for n, r in RULES.items() if r.kind in ("int", "float")])
def test_range_ends_are_accepted(name):
    rule = RULES[name]
    hi = int(rule.hi) if rule.integer else rule.hi
    assert merge(Settings(), {name: hi}, source="test").get(name) == hi


def test_every_setting_is_a_flag_on_the_commands_its_rule_names():
    for command in ("image", "video", "zoom"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "240"})
        assert result.exit_code == 0
        for name, rule in RULES.items():
            flag = (rule.flag or "--" + name.replace("_", "-")).split("/")[0]
            assert (flag in result.output) == (command in rule.commands), (command, flag)


def test_help_shows_defaults_from_the_settings():
    result = runner.invoke(app, ["video", "--help"], env={"COLUMNS": "240"})
    assert "default 24" in result.output  # steps
    assert f"default {config.default_value('blend')}" in result.output
    assert "default --coherent" in result.output


def test_unknown_encoder_preset_fails_fast_before_probe_or_model(tmp_path, no_model):
    clip = tmp_path / "x.mp4"  # does not even exist: the settings are checked first
    t0 = time.perf_counter()
    result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "y.mp4"), "--set", "encoder_preset=fastest"])
    line = _one_error_line(result)
    assert time.perf_counter() - t0 < 1.0
    assert "encoder_preset 'fastest' is unknown" in line and "veryslow" in line and "ultrafast" in line


def test_flag_schedule_replaces_the_presets_reaction_for_that_setting():
    from dreamvideo.presets import load_preset

    preset = load_preset("music-video")
    assert any(spec.startswith("step_size=") for spec in preset.react)
    s = merge(preset, {"schedule": ["step_size=0:0.005,10:0.02"]}, source="command line")
    assert s.schedule == ("step_size=0:0.005,10:0.02",)
    assert not any(spec.startswith("step_size=") for spec in s.react)
    kept = [spec for spec in preset.react if not spec.startswith("step_size=")]
    assert list(s.react) == kept  # the preset's other reactions stay


def test_schedule_that_is_not_a_list_of_strings_is_one_line():
    for bad in (5, [1], {"a": 1}):
        with pytest.raises(ConfigError, match="schedule must be a string or a list of strings"):
            merge(Settings(), {"schedule": bad}, source="x.toml")


def test_vp9_crf_range_reaches_the_encoder_and_h264_is_refused_early(tmp_path):
    from dreamvideo.encode import check_crf

    assert merge(Settings(), {"crf": 60}, source="t").encode.crf == 60
    check_crf("vp9", 60)  # VP9 takes 0..63
    with pytest.raises(ConfigError, match="0..51"):
        check_crf("h264", 60)
    clip = tmp_path / "x.mp4"  # refused before the input is even probed: nothing dreams first
    result = runner.invoke(app, ["zoom", "--noise", "-o", str(clip), "--crf", "60", "--model", "tiny"])
    assert "0..51" in _one_error_line(result) and not clip.exists()


def test_a_new_dream_setting_reaches_every_entry_point(tmp_path, image):
    """octave_detail was added as one config field + one RULES row (+ the engine line that uses it):
    it is a flag on image, video and zoom, a preset/manifest/--set key, schedulable, and it changes
    the dream."""
    import cv2

    for command in ("image", "video", "zoom"):
        assert "--octave-detail" in runner.invoke(app, [command, "--help"], env={"COLUMNS": "240"}).output
    outs = {}
    for how, args in {
        "default": [],
        "flag": ["--octave-detail", "0"],
        "set": ["--set", "octave_detail=0"],
    }.items():
        out = tmp_path / f"{how}.png"
        result = runner.invoke(app, ["image", str(image), "-o", str(out), "--model", "tiny", "--steps", "3",
                                     "--octaves", "3", "--octave-scale", "1.2", "--seed", "1", *args])
        assert result.exit_code == 0, result.output
        outs[how] = cv2.imread(str(out)).astype(int)
    assert np.array_equal(outs["flag"], outs["set"])
    assert np.abs(outs["flag"] - outs["default"]).mean() > 0.1  # the knob does something
    preset = tmp_path / "p.toml"
    preset.write_text('description = "x"\n[dream]\noctave_detail = 0.5\n')
    from dreamvideo.presets import load_preset

    assert load_preset(str(preset)).dream.octave_detail == 0.5
    s = merge(Settings(), {"schedule": ["octave_detail=0:1,2:0"]}, source="t")
    assert s.schedule == ("octave_detail=0:1,2:0",)
