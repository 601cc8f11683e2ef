"""Exact time: frame rates as Fractions, frame times and frame counts. A leaf module (stdlib only).

Time is in seconds everywhere in dreamvideo; frames are derived from it through the exact frame
rate, so 24000/1001 stays 24000/1001 and minutes of video never drift against their sound.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .errors import ConfigError

# Highest frame rate accepted anywhere (fps setting, `analyze --fps`): 1000 fps is past any camera
# or display, and a bound keeps a typo (1e9) from meaning "render forever".
MAX_FPS = 1000
FPS_FORM = "use e.g. 30, 29.97 or 24000/1001"


def parse_fps(value: Any) -> Fraction:
    """'24000/1001', '29.97', 30 or 23.976 -> an exact Fraction within 0 < fps <= MAX_FPS.

    A float is recovered as the nearest fraction with a denominator <= 100000 (29.97 -> 2997/100),
    as the string of the same number would be. Raises ConfigError (one line, with the form) for
    anything else: NaN, infinities, zero, negatives, words, booleans.
    """
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, Fraction):
            fps = value
        elif isinstance(value, float):
            fps = Fraction(value).limit_denominator(100_000)
        elif isinstance(value, int):
            fps = Fraction(value)
        elif isinstance(value, str):
            fps = Fraction(value.strip())
        else:
            raise ValueError
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        raise ConfigError(f"fps {value!r} is not a number: {FPS_FORM}") from None
    if not 0 < fps <= MAX_FPS:
        raise ConfigError(f"fps must be within 0..{MAX_FPS} (exclusive of 0), got {value!r}: {FPS_FORM}")
    return fps


def fps_text(fps: Fraction) -> str:
    """'24000/1001' or '30': the exact form, as the settings JSON and ffmpeg's -r take it."""
    return f"{fps.numerator}/{fps.denominator}" if fps.denominator != 1 else str(fps.numerator)


def snap_fps(value: float) -> Fraction:
    """An exact frame rate from a double of it: 23.976023976 -> 24000/1001, 14.999925 -> 15.

    Common rates (integers, halves, NTSC k*1000/1001) are preferred when the double is within a
    relative 2e-5 of one of them (AVI headers store e.g. 66667 microseconds per frame for 15 fps);
    anything else is recovered with ``Fraction(value).limit_denominator(100000)``.
    """
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"frame rate must be a finite number > 0, got {value}")
    candidates = [
        Fraction(round(value)),
        Fraction(round(value * 2), 2),
        Fraction(round(value * 1.001) * 1000, 1001),
    ]
    best = None
    for cand in candidates:
        if cand > 0 and abs(float(cand) - value) <= 2e-5 * value:
            if best is None or cand.denominator < best.denominator:
                best = cand
    return best if best is not None else Fraction(value).limit_denominator(100_000)


def frame_time(frame: int, fps: Fraction) -> float:
    """Seconds at the start of ``frame``: ``frame / fps`` computed exactly, then rounded once."""
    return float(Fraction(frame) / fps)


def frame_count(seconds: float, fps: Fraction) -> int:
    """Frames in ``seconds`` at ``fps``: round(seconds * fps), half up, exact on the Fraction; >= 1."""
    n = Fraction(seconds) * Fraction(fps)
    return max(1, math.floor(n + Fraction(1, 2)))
