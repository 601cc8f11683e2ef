"""Schedules and reactions: per-frame values at exact frame times, the grammar, and its errors."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from dreamvideo.audio import AudioFeatures
from dreamvideo import schedule as grammar
from dreamvideo.config import FLAT_INDEX, RULES, VARYING, Settings
from dreamvideo.errors import ConfigError
from dreamvideo.schedule import (
    FEATURES,
    REACT_FORM,
    SCHEDULE_FORM,
    Reaction,
    Schedule,
    Timeline,
)

SCHEDULABLE = VARYING  # the settings' own rules: the grammar reads config.RULES


def parse_schedule(spec):
    return grammar.parse_schedule(spec, RULES)


def parse_reaction(spec):
    return grammar.parse_reaction(spec, RULES)


def parse_all(schedules, reactions):
    return grammar.parse_all(schedules, reactions, RULES)

FPS_CASES = [Fraction(24), Fraction(30), Fraction(24000, 1001)]


def features(fps: Fraction, n: int, **arrays: np.ndarray) -> AudioFeatures:
    zeros = np.zeros(n, np.float32)
    full = {name: np.asarray(arrays.get(name, zeros), np.float32) for name in FEATURES}
    onset_frames = np.flatnonzero(full["onsets"] >= 1.0)
    return AudioFeatures(fps=fps, onset_frames=onset_frames, **full)


def smoothstep(s: float) -> float:
    return 3 * s * s - 2 * s * s * s


# ---------------------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_linear_schedule_value_at_frame_is_keyframes_value_at_frame_time(fps):
    spec = "step_size=0:0.005,10:0.02,20:0.005"
    tl = Timeline([parse_schedule(spec)], [], fps, n_frames=int(25 * fps), features=None)
    for n in range(tl.n_frames):
        t = float(Fraction(n) / fps)
        assert tl.values(n) == {"step_size": pytest.approx(np.interp(t, [0, 10, 20], [0.005, 0.02, 0.005]), abs=1e-15)}
    # keyframe times that fall on a frame give the keyframe value exactly
    if fps.denominator == 1:
        assert tl.values(int(10 * fps))["step_size"] == 0.02
        assert tl.values(int(5 * fps))["step_size"] == pytest.approx(0.0125)
        assert tl.values(int(15 * fps))["step_size"] == pytest.approx(0.0125)
    # held after the last keyframe, also past n_frames
    assert tl.values(int(22 * fps))["step_size"] == 0.005
    assert tl.values(10**6)["step_size"] == 0.005


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_held_before_first_and_after_last_keyframe(fps):
    s = parse_schedule("blend=2:0.1,4:0.7")
    tl = Timeline([s], [], fps, n_frames=int(6 * fps))
    series = tl.series("blend")
    times = np.array([float(Fraction(n) / fps) for n in range(tl.n_frames)])
    assert np.all(series[times <= 2] == 0.1)
    assert np.all(series[times >= 4] == 0.7)
    inside = (times > 2) & (times < 4)
    assert np.allclose(series[inside], 0.1 + 0.6 * (times[inside] - 2) / 2)


@pytest.mark.parametrize("fps", FPS_CASES, ids=str)
def test_smooth_schedule_eases_between_keyframes(fps):
    s = parse_schedule("zoom_per_second=0:1.0,4:2.0,smooth")
    assert s.smooth
    tl = Timeline([s], [], fps, n_frames=int(6 * fps))
    for n in range(tl.n_frames):
        t = float(Fraction(n) / fps)
        want = 1.0 + smoothstep(min(t, 4.0) / 4.0)  # two keyframes: ease in/out (flat at both ends)
        assert tl.values(n)["zoom_per_second"] == pytest.approx(want, abs=1e-12)
    assert tl.values(0)["zoom_per_second"] == 1.0
    assert tl.values(int(5 * fps))["zoom_per_second"] == 2.0


def test_smooth_schedule_hits_keyframes_and_never_overshoots():
    fps = Fraction(30)
    s = parse_schedule("zoom_per_second=0:1.1,3:1.3,8:1.9,12:1.2,smooth")
    for t, v in zip(s.times, s.values):
        assert s.value_at(t) == pytest.approx(v, abs=1e-12)
    series = Timeline([s], [], fps, n_frames=int(14 * fps)).series("zoom_per_second")
    assert series.min() >= 1.1 - 1e-12 and series.max() <= 1.9 + 1e-12
    rising = series[: int(8 * fps) + 1]
    assert np.all(np.diff(rising) >= -1e-12)  # monotone keyframes: monotone curve (no dip at 3 s)
    assert np.diff(rising)[int(3 * fps)] > 0  # and it does not stop at the intermediate keyframe
    assert np.abs(np.diff(series)).max() < 0.01  # no jumps between frames
    linear = parse_schedule("zoom_per_second=0:1.1,3:1.3,8:1.9,12:1.2")
    assert not linear.smooth and linear.value_at(1.5) == pytest.approx(1.2)


def test_integer_settings_are_rounded_half_up():
    fps = Fraction(30)
    tl = Timeline([parse_schedule("steps=0:2,10:12")], [], fps, n_frames=301)
    assert tl.values(75) == {"steps": 5} and isinstance(tl.values(75)["steps"], int)  # 2.5 s -> 4.5 -> 5
    assert tl.values(0)["steps"] == 2 and tl.values(300)["steps"] == 12


def test_single_keyframe_is_a_constant_and_specs_round_trip():
    s = parse_schedule(" octaves = 0:3 ")
    assert s == Schedule("octaves", (0.0,), (3.0,), False, integer=True)
    assert s.value_at(0) == s.value_at(100) == 3.0
    for spec in ("step_size=0:0.005,10:0.02,20:0.005", "zoom_per_second=0:1.1,8:1.6,smooth",
                 "rotate_per_second=1.5:-10,3:10"):
        assert parse_schedule(spec).spec == spec
        assert parse_schedule(parse_schedule(spec).spec) == parse_schedule(spec)
    assert parse_schedule("step-size=0:0.01,1:0.02,linear").name == "step_size"


# ---------------------------------------------------------------------------------------------- reactions


@pytest.mark.parametrize("fps", [Fraction(24), Fraction(30)], ids=str)
def test_reaction_follows_the_feature_between_lo_and_hi(fps):
    n = 100
    ramp = np.linspace(0, 1, n)
    f = features(fps, n, loudness=ramp)
    tl = Timeline([], [parse_reaction("step_size=loudness:0.004..0.02")], fps, n, f)
    got = np.array([tl.values(i)["step_size"] for i in range(n)])
    assert np.allclose(got, 0.004 + 0.016 * ramp.astype(np.float32), atol=1e-9)
    assert got[0] == pytest.approx(0.004) and got[-1] == pytest.approx(0.02)


def test_reaction_with_lo_above_hi_dips_on_onsets():
    fps, n = Fraction(30), 60
    pulse = np.zeros(n)
    pulse[[10, 40]] = 1.0
    pulse[11:14] = [0.5, 0.25, 0.1]
    tl = Timeline([], [parse_reaction("blend=onsets:0.9..0.5")], fps, n, features(fps, n, onsets=pulse))
    got = np.array([tl.values(i)["blend"] for i in range(n)])
    assert got[0] == pytest.approx(0.9) and got[10] == pytest.approx(0.5) and got[40] == pytest.approx(0.5)
    assert got[11] == pytest.approx(0.7) and 0.5 < got[12] < got[13] < 0.9
    assert np.all((got >= 0.5 - 1e-12) & (got <= 0.9 + 1e-12))
    for i in range(n):  # every frame's values are valid settings
        Settings().replace(**tl.values(i))


def test_reaction_smoothing_lags_and_stays_in_range():
    fps, n = Fraction(30), 90
    step = np.zeros(n)
    step[30:] = 1.0
    f = features(fps, n, low=step)
    r = parse_reaction("zoom_per_second=low:1.0..2.0,smooth=0.2")
    assert r == Reaction("zoom_per_second", "low", 1.0, 2.0, 0.2)
    got = Timeline([], [r], fps, n, f).series("zoom_per_second")
    assert np.all(got[:30] == 1.0)
    assert got[30] < 1.3  # it does not jump ...
    assert np.all(np.diff(got[30:]) > 0) and got[-1] > 1.99  # ... it glides up to HI
    # 0.2 s time constant: 63% of the way after 6 frames at 30 fps
    assert got[35] == pytest.approx(1 + (1 - np.exp(-6 / 6)), abs=0.02)


def test_reaction_past_the_audio_rests_at_lo_and_past_n_frames_holds():
    fps = Fraction(30)
    f = features(fps, 10, loudness=np.ones(10))
    tl = Timeline([], [parse_reaction("octave_scale=loudness:1.2..1.8")], fps, 20, f)
    assert tl.values(5)["octave_scale"] == pytest.approx(1.8)
    assert tl.values(15)["octave_scale"] == pytest.approx(1.2)  # audio ended: feature 0 -> LO
    assert tl.values(500)["octave_scale"] == pytest.approx(1.2)  # beyond the estimate: last value held


def test_schedules_and_reactions_together():
    fps, n = Fraction(24000, 1001), 240
    f = features(fps, n, mid=np.full(n, 0.5))
    s, r = parse_all(["warm_steps=0:2,5:6"], ["rotate_per_second=mid:-10..10"])
    tl = Timeline(s, r, fps, n, f)
    assert tl.needs_audio() and tl.names == ("warm_steps", "rotate_per_second")
    v = tl.values(120)  # 120 * 1001 / 24000 = 5.005 s
    assert v == {"warm_steps": 6, "rotate_per_second": pytest.approx(0.0)}
    described = tl.describe()
    json.dumps(described)
    assert described[0]["spec"] == "warm_steps=0:2,5:6" and described[0]["kind"] == "schedule"
    assert described[1]["feature"] == "mid" and described[1]["kind"] == "react"
    assert not Timeline(s, [], fps, n, None).needs_audio()


def test_reactions_without_audio_are_a_config_error():
    with pytest.raises(ConfigError, match="needs audio.*--audio"):
        Timeline([], [parse_reaction("blend=onsets:0.9..0.5")], Fraction(30), 10, None)


def test_features_at_another_fps_are_refused():
    f = features(Fraction(24), 10)
    with pytest.raises(ConfigError, match="24 fps.*30 fps"):
        Timeline([], [parse_reaction("blend=onsets:0.9..0.5")], Fraction(30), 10, f)


@pytest.mark.parametrize(
    "schedules,reactions",
    [
        (["step_size=0:0.01", "step_size=0:0.02"], []),
        (["step_size=0:0.01"], ["step_size=loudness:0.004..0.02"]),
        ([], ["blend=onsets:0.9..0.5", "blend=low:0..1"]),
    ],
)
def test_one_driver_per_setting(schedules, reactions):
    with pytest.raises(ConfigError, match="one schedule or one reaction per setting"):
        parse_all(schedules, reactions)


def test_schedulable_names_are_real_settings_with_valid_ranges():
    for name, bound in SCHEDULABLE.items():
        lo = bound.lo if bound.lo is not None else -5.0
        ok = lo + (1 if bound.lo_open else 0)
        want = int(ok) if bound.integer else ok
        # A scheduled value reaches that very setting: the config accepts what we accept.
        values = Timeline([parse_schedule(f"{name}=0:{want}")], [], Fraction(30), 1).values(0)
        settings = Settings().replace(**values)
        assert getattr(getattr(settings, FLAT_INDEX[name]), name) == want, name
        # And both refuse what either refuses, below LO (at LO when open) and above HI.
        bad = [bound.lo if bound.lo_open else bound.lo - 1] if bound.lo is not None else []
        bad += [bound.hi + 1] if bound.hi is not None else []
        for v in bad:
            with pytest.raises(ConfigError):
                parse_schedule(f"{name}=0:{v}")
            with pytest.raises(ConfigError):
                Settings().replace(**{name: int(v) if bound.integer else v})


# ---------------------------------------------------------------------------------------------- bad specs


@pytest.mark.parametrize(
    "spec,reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("step_size", "missing '='"),
        ("step_size=", "no keyframes"),
        ("step_size=0-0.005", "'0-0.005' is not T:V"),
        ("step_size=0:0.005:1", "is not T:V"),
        ("step_size=a:0.01", "'a'.*not a number of seconds"),
        ("step_size=0:fast", "'fast'.*not a number"),
        ("step_size=0:nan", "not a number"),
        ("step_size=10:0.01,5:0.02", "times must increase"),
        ("step_size=0:0.01,0:0.02", "times must increase"),
        ("step_size=-1:0.01", "negative"),
        ("stepsize=0:0.01", "unknown setting 'stepsize'.*did you mean step_size.*zoom_per_second"),
        ("flow=0:1", "'flow' cannot vary over time"),
        ("translate_per_second=0:1", "cannot vary over time"),
        ("blend=0:0.2,5:1.5", "blend must be within 0..1, got 1.5"),
        ("octave_scale=0:1", "octave_scale must be > 1"),
        ("step_size=smooth,0:0.01", "must come last"),
    ],
)
def test_bad_schedules_show_the_expected_form(spec, reason):
    with pytest.raises(ConfigError, match=reason) as err:
        parse_schedule(spec)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"bad schedule {spec!r}")
    assert SCHEDULE_FORM in msg and "NAME=T:V,T:V" in msg and "e.g. step_size=0:0.005" in msg


@pytest.mark.parametrize(
    "spec,reason",
    [
        ("", "empty"),
        ("step_size", "missing '='"),
        ("step_size=", "nothing after '='"),
        ("step_size=loudness", "'loudness' is not FEATURE:LO..HI"),
        ("step_size=loudness:0.004-0.02", "range '0.004-0.02' is not LO..HI"),
        ("step_size=loudness:0.004..0.02..0.03", "is not LO..HI"),
        ("step_size=loudness:low..high", "non-numeric"),
        ("step_size=beat:0.004..0.02", "unknown audio feature 'beat'.*loudness, onsets, low, mid, high"),
        ("step_size=onset:0.004..0.02", "did you mean onsets"),
        ("stepsize=loudness:0.004..0.02", "unknown setting 'stepsize'"),
        ("blend=onsets:0.9..1.5", "blend must be within 0..1, got 1.5 at HI"),
        ("zoom_per_second=onsets:0..2", "zoom_per_second must be within 0.01..100, got 0 at LO"),
        ("blend=onsets:0.9..0.5,smooth=fast", "not a number of seconds"),
        ("blend=onsets:0.9..0.5,smooth=-1", "negative"),
        ("blend=onsets:0.9..0.5,decay=1", "unknown option 'decay=1'"),
    ],
)
def test_bad_reactions_show_the_expected_form(spec, reason):
    with pytest.raises(ConfigError, match=reason) as err:
        parse_reaction(spec)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"bad reaction {spec!r}")
    assert REACT_FORM in msg and "NAME=FEATURE:LO..HI" in msg and "e.g. step_size=loudness:0.004..0.02" in msg


def test_good_reaction_forms():
    assert parse_reaction("step_size=loudness:0.004..0.02") == Reaction("step_size", "loudness", 0.004, 0.02, 0.0)
    assert parse_reaction("blend=onsets:0.9..0.5") == Reaction("blend", "onsets", 0.9, 0.5, 0.0)
    assert parse_reaction("rotate_per_second=high:-20..20,smooth=0.5").lo == -20
    assert parse_reaction("zoom-per-second = onsets : 1.1 .. 2.0").name == "zoom_per_second"
    for spec in ("blend=onsets:0.9..0.5", "zoom_per_second=low:1.1..2,smooth=0.3"):
        assert parse_reaction(spec).spec == spec


def test_float_frame_rate_is_the_same_rate_everywhere():
    """29.97 given as a float to the analysis and the timeline is one rate (2997/100), not two."""
    import numpy as np

    from dreamvideo.audio import analyze

    schedules, reactions = parse_all([], ["step_size=loudness:0.01..0.02"])
    features = analyze(np.zeros(22050, np.float32), 22050, 29.97)
    timeline = Timeline(schedules, reactions, 29.97, 10, features)
    assert timeline.fps == Fraction(2997, 100) == features.fps
    assert 0.01 <= timeline.values(3)["step_size"] <= 0.02
