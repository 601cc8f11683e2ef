"""Keyframed schedules and audio reactions: settings that change over the frames of one render.

Schedules (``--schedule``, manifest ``schedule = [...]``)::

    NAME=T:V,T:V[,...][,smooth]        T in seconds (>= 0, increasing), V the setting's value
    step_size=0:0.005,10:0.02,20:0.005           linear between keyframes
    zoom_per_second=0:1.1,8:1.6,16:1.1,smooth    monotone cubic: eases out of/into the ends and
                                                 turning points, never overshoots a keyframe
    octaves=0:4                                  a single keyframe: a constant

The value is held at the first keyframe's value before it and at the last one's after it.
``,linear`` may be written for the default. ``-`` in a name is read as ``_`` (``step-size``).

Reactions (``--react``, manifest ``react = [...]``)::

    NAME=FEATURE:LO..HI[,smooth=SECONDS]
    step_size=loudness:0.004..0.02        quiet -> 0.004, loud -> 0.02
    blend=onsets:0.9..0.5                 0.9 at rest, 0.5 on each onset (LO may be > HI)
    zoom_per_second=low:1.1..2.0,smooth=0.3

``value = LO + (HI - LO) * feature`` where the feature (loudness, onsets, low, mid, high; each 0..1,
see :mod:`dreamvideo.audio`) is first smoothed by a causal one-pole filter with a time constant of
``smooth`` seconds (default 0: the features are already enveloped).

One setting takes one schedule or one reaction: giving a setting two of them (or both) is a
ConfigError, so what drives a value is never ambiguous. Integer settings (steps, octaves, jitter,
warm_steps, warm_octaves) may take fractional values in specs; :meth:`Timeline.values` rounds them
half-up and returns ints. Values are range-checked at parse time like the settings themselves
(``blend`` within 0..1, ``octave_scale`` > 1, ...); interpolation never leaves the keyframes' range,
so every per-frame value is valid too.

``translate_per_second`` and ``center`` are (x, y) pairs and are not schedulable; nor are strings,
booleans and sizes. Frame ``n``'s time is ``n / fps`` seconds, computed exactly from the Fraction.
"""

from __future__ import annotations

import bisect
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .audio import FEATURES  # ("loudness", "onsets", "low", "mid", "high"); audio.py is numpy-only
from .errors import ConfigError
from .timing import frame_time, parse_fps

if TYPE_CHECKING:
    from .audio import AudioFeatures

SCHEDULE_FORM = "NAME=T:V,T:V[,...][,smooth] with T in seconds, e.g. step_size=0:0.005,10:0.02,20:0.005"
REACT_FORM = "NAME=FEATURE:LO..HI[,smooth=SECONDS], e.g. step_size=loudness:0.004..0.02 or blend=onsets:0.9..0.5"


class Bound(Protocol):
    """What the grammar reads of a setting's rule (config.Rule): its range, and whether it may vary."""

    vary: bool  # may follow a schedule or reaction
    integer: bool  # whole numbers only (values are rounded half-up per frame)

    def describe(self) -> str: ...  # the range in words, for messages

    def ok(self, v: float) -> bool: ...  # True if v is inside the range


Rules = Mapping[str, Bound]  # flat setting name -> its rule: config.RULES


def _num(x: float) -> str:
    return format(x, ".10g")


def _float(text: str) -> float:
    v = float(text)  # ValueError on junk
    if not math.isfinite(v):
        raise ValueError(text)
    return v


def _check_name(raw: str, fail, rules: Rules) -> str:
    name = raw.strip().replace("-", "_")
    if not name:
        fail("no setting name before '='")
    varying = sorted(n for n, r in rules.items() if r.vary)
    if name not in varying:
        valid = ", ".join(varying)
        if name in rules:
            fail(f"{name!r} cannot vary over time (only numeric settings can: {valid})")
        close = difflib.get_close_matches(name, varying, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        fail(f"unknown setting {name!r}{hint}; schedulable: {valid}")
    return name


def _check_value(name: str, v: float, where: str, fail, rules: Rules) -> None:
    bound = rules[name]
    if not bound.ok(v):
        fail(f"{name} must be {bound.describe()}, got {_num(v)} {where}")


# ----------------------------------------------------------------------------------------------
# schedules


@dataclass(frozen=True)
class Schedule:
    """Keyframes (seconds -> value) of one setting; linear or smooth (monotone cubic) in between."""

    name: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    smooth: bool = False
    integer: bool = False  # the setting takes whole numbers: per-frame values are rounded half-up

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.values):
            raise ConfigError(
                f"bad schedule for {self.name}: needs as many values as times, at least one; expected {SCHEDULE_FORM}"
            )
        if any(b <= a for a, b in zip(self.times, self.times[1:])) or self.times[0] < 0:
            raise ConfigError(
                f"bad schedule for {self.name}: times must be >= 0 and increasing; expected {SCHEDULE_FORM}"
            )

    @property
    def spec(self) -> str:
        """The canonical spec string (parses back to an equal Schedule)."""
        keys = ",".join(f"{_num(t)}:{_num(v)}" for t, v in zip(self.times, self.values))
        return f"{self.name}={keys}{',smooth' if self.smooth else ''}"

    @cached_property
    def _slopes(self) -> tuple[float, ...]:
        """Fritsch-Carlson (PCHIP) tangents with flat ends: monotone, no overshoot."""
        t, v = self.times, self.values
        n = len(t)
        m = [0.0] * n
        if n < 3:
            return tuple(m)
        h = [t[k + 1] - t[k] for k in range(n - 1)]
        d = [(v[k + 1] - v[k]) / h[k] for k in range(n - 1)]
        for k in range(1, n - 1):
            if d[k - 1] * d[k] > 0:
                w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
                m[k] = (w1 + w2) / (w1 / d[k - 1] + w2 / d[k])
        return tuple(m)

    def value_at(self, t: float) -> float:
        """The value at ``t`` seconds (held before the first and after the last keyframe)."""
        times, values = self.times, self.values
        if t <= times[0]:
            return float(values[0])
        if t >= times[-1]:
            return float(values[-1])
        k = bisect.bisect_right(times, t) - 1
        t0, t1, v0, v1 = times[k], times[k + 1], values[k], values[k + 1]
        h = t1 - t0
        s = (t - t0) / h
        if not self.smooth:
            return float(v0 + (v1 - v0) * s)
        m0, m1 = self._slopes[k], self._slopes[k + 1]
        s2, s3 = s * s, s * s * s
        return float(
            (2 * s3 - 3 * s2 + 1) * v0 + (s3 - 2 * s2 + s) * h * m0 + (-2 * s3 + 3 * s2) * v1 + (s3 - s2) * h * m1
        )


def parse_schedule(spec: str, rules: Rules) -> Schedule:
    """``"step_size=0:0.005,10:0.02,20:0.005[,smooth]"`` -> Schedule; ConfigError showing the form.

    ``rules``: each setting's rule (config.RULES): which may vary, and their ranges.
    """

    def fail(reason: str):
        raise ConfigError(f"bad schedule {spec!r}: {reason}; expected {SCHEDULE_FORM}")

    if not isinstance(spec, str) or not spec.strip():
        fail("it is empty")
    if "=" not in spec:
        fail("missing '=' between the setting name and its keyframes")
    raw_name, body = spec.split("=", 1)
    name = _check_name(raw_name, fail, rules)
    parts = [p.strip() for p in body.split(",")]
    smooth = False
    if parts and parts[-1].lower() in ("smooth", "linear"):
        smooth = parts.pop().lower() == "smooth"
    if not parts or parts == [""]:
        fail("no keyframes after '='")
    times: list[float] = []
    values: list[float] = []
    for part in parts:
        if part.lower() in ("smooth", "linear"):
            fail(f"'{part}' must come last")
        if part.count(":") != 1:
            fail(f"keyframe {part!r} is not T:V")
        t_txt, v_txt = part.split(":")
        try:
            t = _float(t_txt)
        except ValueError:
            fail(f"time {t_txt.strip()!r} in keyframe {part!r} is not a number of seconds")
        try:
            v = _float(v_txt)
        except ValueError:
            fail(f"value {v_txt.strip()!r} in keyframe {part!r} is not a number")
        if t < 0:
            fail(f"time {_num(t)} is negative")
        if times and t <= times[-1]:
            fail(f"times must increase, but {_num(t)} follows {_num(times[-1])}")
        _check_value(name, v, f"at {_num(t)} s", fail, rules)
        times.append(t)
        values.append(v)
    return Schedule(name=name, times=tuple(times), values=tuple(values), smooth=smooth, integer=rules[name].integer)


# ----------------------------------------------------------------------------------------------
# reactions


@dataclass(frozen=True)
class Reaction:
    """``value = lo + (hi - lo) * feature`` (feature 0..1, smoothed over ``smoothing`` seconds)."""

    name: str
    feature: str
    lo: float
    hi: float
    smoothing: float = 0.0
    integer: bool = False  # the setting takes whole numbers: per-frame values are rounded half-up

    @property
    def spec(self) -> str:
        """The canonical spec string (parses back to an equal Reaction)."""
        tail = f",smooth={_num(self.smoothing)}" if self.smoothing else ""
        return f"{self.name}={self.feature}:{_num(self.lo)}..{_num(self.hi)}{tail}"

    def apply(self, feature: np.ndarray, fps: Fraction) -> np.ndarray:
        """Per-frame values for a per-frame feature array."""
        x = np.clip(np.asarray(feature, dtype=np.float64), 0.0, 1.0)
        if self.smoothing > 0 and x.size:
            a = math.exp(-1.0 / (float(fps) * self.smoothing))
            y = np.empty_like(x)
            acc = float(x[0])
            for i, v in enumerate(x.tolist()):
                acc = a * acc + (1.0 - a) * v
                y[i] = acc
            x = y
        return self.lo + (self.hi - self.lo) * x


def parse_reaction(spec: str, rules: Rules) -> Reaction:
    """``"step_size=loudness:0.004..0.02[,smooth=0.3]"`` -> Reaction; ConfigError showing the form.

    ``rules``: each setting's rule (config.RULES): which may vary, and their ranges.
    """

    def fail(reason: str):
        raise ConfigError(f"bad reaction {spec!r}: {reason}; expected {REACT_FORM}")

    if not isinstance(spec, str) or not spec.strip():
        fail("it is empty")
    if "=" not in spec:
        fail("missing '=' between the setting name and FEATURE:LO..HI")
    raw_name, body = spec.split("=", 1)
    name = _check_name(raw_name, fail, rules)
    head, *options = [p.strip() for p in body.split(",")]
    if not head:
        fail("nothing after '='")
    if head.count(":") != 1:
        fail(f"{head!r} is not FEATURE:LO..HI")
    feature, rng = (p.strip() for p in head.split(":"))
    if feature not in FEATURES:
        close = difflib.get_close_matches(feature, FEATURES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        fail(f"unknown audio feature {feature!r}{hint}; features: {', '.join(FEATURES)}")
    bounds = rng.split("..")
    if len(bounds) != 2:
        fail(f"range {rng!r} is not LO..HI")
    try:
        lo, hi = _float(bounds[0]), _float(bounds[1])
    except ValueError:
        fail(f"range {rng!r} has a non-numeric end")
    _check_value(name, lo, "at LO", fail, rules)
    _check_value(name, hi, "at HI", fail, rules)
    smoothing = 0.0
    for opt in options:
        key, _, val = opt.partition("=")
        if key.strip().lower() not in ("smooth", "smoothing") or not _:
            fail(f"unknown option {opt!r} (the only option is smooth=SECONDS)")
        try:
            smoothing = _float(val)
        except ValueError:
            fail(f"smooth={val.strip()!r} is not a number of seconds")
        if smoothing < 0:
            fail(f"smooth={_num(smoothing)} is negative")
    return Reaction(name=name, feature=feature, lo=lo, hi=hi, smoothing=smoothing, integer=rules[name].integer)


# ----------------------------------------------------------------------------------------------
# all of one render


def _check_unique(schedules: Sequence[Schedule], reactions: Sequence[Reaction]) -> None:
    seen: dict[str, str] = {}
    for kind, items in (("schedule", schedules), ("reaction", reactions)):
        for item in items:
            if item.name in seen:
                other = seen[item.name]
                what = f"two {kind}s" if other == kind else "both a schedule and a reaction"
                raise ConfigError(f"{item.name} is given {what}: use one schedule or one reaction per setting")
            seen[item.name] = kind


def parse_all(
    schedules: Sequence[str], reactions: Sequence[str], rules: Rules
) -> tuple[list[Schedule], list[Reaction]]:
    """Parse ``--schedule`` and ``--react`` specs; each setting may appear once in all of them.

    ``rules``: each setting's rule (config.RULES): which may vary, and their ranges.
    """
    if isinstance(schedules, str):
        schedules = [schedules]
    if isinstance(reactions, str):
        reactions = [reactions]
    s = [parse_schedule(spec, rules) for spec in schedules]
    r = [parse_reaction(spec, rules) for spec in reactions]
    _check_unique(s, r)
    return s, r


class Timeline:
    """Per-frame values for the scheduled/reactive settings of one render."""

    def __init__(
        self,
        schedules: Sequence[Schedule],
        reactions: Sequence[Reaction],
        fps: Fraction,
        n_frames: int,
        features: AudioFeatures | None = None,
    ):
        self.schedules = list(schedules)
        self.reactions = list(reactions)
        _check_unique(self.schedules, self.reactions)
        self.fps = parse_fps(fps)  # exact; a float such as 29.97 becomes 2997/100, as everywhere
        self.n_frames = int(n_frames)
        if self.n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        self.features = features
        if self.reactions and features is None:
            names = ", ".join(r.name for r in self.reactions)
            raise ConfigError(
                f"--react ({names}) needs audio, but there is none: give the input an audio track or pass --audio FILE"
            )
        if features is not None and self.reactions and features.fps != self.fps:
            raise ConfigError(
                f"audio features were analysed at {features.fps} fps but the render runs at {self.fps} fps: "
                "delete the features cache so it is re-analysed"
            )
        # reactions are stateful (smoothing) and need the whole feature curve: precompute per frame.
        # Frames past the analysed audio are silence (feature 0).
        self._reacted: dict[str, np.ndarray] = {}
        for r in self.reactions:
            feat = np.zeros(self.n_frames, dtype=np.float64)
            src = np.asarray(features.feature(r.feature), dtype=np.float64)[: self.n_frames]
            feat[: len(src)] = src
            self._reacted[r.name] = r.apply(feat, self.fps)

    @property
    def names(self) -> tuple[str, ...]:
        """The settings this timeline drives, schedules first."""
        return tuple(s.name for s in self.schedules) + tuple(r.name for r in self.reactions)

    def __bool__(self) -> bool:
        return bool(self.schedules or self.reactions)

    def needs_audio(self) -> bool:
        return bool(self.reactions)

    def time(self, frame: int) -> float:
        return frame_time(frame, self.fps)

    def values(self, frame: int) -> dict[str, float]:
        """Flat setting name -> value at ``frame`` (ints for integer settings, rounded half-up).

        Frames past ``n_frames`` (a frame-count estimate that was short) hold the last reactive value.
        """
        if frame < 0:
            raise ValueError(f"frame must be >= 0, got {frame}")
        out: dict[str, Any] = {}
        t = self.time(frame)
        for s in self.schedules:
            out[s.name] = s.value_at(t)
        for r in self.reactions:
            arr = self._reacted[r.name]
            out[r.name] = float(arr[min(frame, len(arr) - 1)]) if len(arr) else float(r.lo)
        for spec in (*self.schedules, *self.reactions):
            if spec.integer:
                out[spec.name] = int(math.floor(out[spec.name] + 0.5))
        return out

    def series(self, name: str) -> np.ndarray:
        """All ``n_frames`` values of one driven setting (float64, before integer rounding)."""
        for s in self.schedules:
            if s.name == name:
                return np.array([s.value_at(self.time(n)) for n in range(self.n_frames)])
        if name in self._reacted:
            return self._reacted[name].copy()
        raise ConfigError(
            f"{name!r} is not scheduled or reactive in this render: driven settings are "
            f"{', '.join(self.names) or 'none'}"
        )

    def describe(self) -> list[dict]:
        """JSON-friendly description for the settings file beside a render."""
        out: list[dict] = []
        for s in self.schedules:
            out.append(
                {
                    "setting": s.name,
                    "kind": "schedule",
                    "spec": s.spec,
                    "keyframes": [[t, v] for t, v in zip(s.times, s.values)],
                    "interpolation": "smooth" if s.smooth else "linear",
                }
            )
        for r in self.reactions:
            out.append(
                {
                    "setting": r.name,
                    "kind": "react",
                    "spec": r.spec,
                    "feature": r.feature,
                    "lo": r.lo,
                    "hi": r.hi,
                    "smoothing": r.smoothing,
                }
            )
        return out
