"""Settings: one frozen dataclass per stage, resolved as defaults < preset < manifest < CLI flags.

Every field carries a comment saying what it is, its unit and its range. Names are unique across
sections, so a flat key (``step_size = 0.02`` in a manifest, ``--schedule step_size=...``) finds its
section without ambiguity. Unknown keys are an error, as in nanoGPT's configurator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Mapping

from .errors import ConfigError

LOSSES = ("mean", "meansquare")
FLOWS = ("dis-fast", "dis-medium", "farneback")
WARPS = ("detail", "frame")
PRECISIONS = ("float32", "bfloat16", "float16", "auto")


@dataclass(frozen=True)
class DreamConfig:
    """How one image is dreamed: the model, its layers, and the gradient ascent."""

    model: str | None = None  # registry name; None = inception_v3 when its weights can be had, else efficientnet_lite0
    weights: str | None = None  # local weights file for the model (None = env DREAMVIDEO_WEIGHTS, Keras cache, download)
    layers: tuple[str, ...] | None = None  # layers whose activations are maximised; None = the model's defaults
    loss: str = "mean"  # "mean" of activations (smooth) or "meansquare" (the classic snippet; harsher)
    octaves: int = 4  # pyramid levels, >= 1; smaller ones are dropped if their short side would fall below the model's minimum
    octave_scale: float = 1.4  # size ratio between octaves, > 1
    steps: int = 24  # gradient-ascent steps per octave, >= 0 (0 = no dreaming, useful to test camera motion)
    step_size: float = 0.03  # step in units of the image range [-1, 1] per step, with std-normalised gradients
    jitter: int = 16  # max random roll in pixels per step, so tiles and stride grids never show; >= 0
    tile_size: int = 512  # gradients are computed in tiles of at most this many pixels a side (bounds memory); >= 64
    max_side: int | None = None  # downscale inputs so the longer side is at most this (pixels); None = keep size
    seed: int = 0  # seeds every random choice (rolls, noise); same seed + input + settings = same output
    precision: str = "float32"  # model compute dtype: float32, bfloat16, float16 (GPUs), auto (probed); image stays f32


@dataclass(frozen=True)
class VideoConfig:
    """How frames are chained so the dream moves with the scene instead of flickering."""

    flow: str = "dis-medium"  # optical flow: "dis-medium" (default: ~30% less warp error than dis-fast for ~40 ms/frame at 640x360, bench/bench_flow.py), "dis-fast", "farneback"
    warp: str = "detail"  # carried to the next frame: "detail" (dream minus raw; default) or the whole dreamed "frame". Measured on 100 vtest frames: "frame" flickers a little less (2.6 vs 3.1) only by lagging the scene: in moving regions |out-in| grows 15 -> 31 (smeared people) while "detail" stays at 5
    blend: float = 0.02  # mix of the raw frame into the warped dream before dreaming, 0 = all warped dream, 1 = all raw
    warm_steps: int = 4  # steps per octave for frames seeded from the previous dream (the first frame uses `steps`)
    warm_octaves: int = 2  # octaves for seeded frames (at most `octaves`): the coarse structure is inherited, only fine detail is redone
    warm_step_scale: float = 0.35  # step size of seeded frames relative to step_size, 0..1: small steps refresh the carried dream without churning it (vtest: flicker 10 -> 3, no snowball over 100 frames)
    detail_decay: float = 0.98  # factor on the carried dream detail per frame, 0..1; < 1 keeps it from snowballing
    scene_cut: float = 0.5  # fraction of pixels the flow cannot explain above which the chain restarts, 0..1
    coherent: bool = True  # False = dream every frame from its raw frame (boils; kept to compare and measure)
    color_match: bool = True  # hold each dreamed frame's colour mean/std to its source frame's (no drift over time)
    start: float = 0.0  # seconds into the source where the render starts, >= 0
    duration: float | None = None  # seconds of source to render; None = to the end
    max_frames: int | None = None  # stop after this many frames; None = no limit


@dataclass(frozen=True)
class ZoomConfig:
    """The camera of an infinite zoom: motion is per second and converted to per frame through fps."""

    seconds: float = 10.0  # length of the animation, > 0
    fps: Fraction = Fraction(30)  # frames per second, > 0; a fraction such as 24000/1001 stays exact
    zoom_per_second: float = 1.3  # scale factor per second, > 0 (> 1 dives in, < 1 pulls out); per frame = this ** (1/fps)
    rotate_per_second: float = 0.0  # degrees per second, counter-clockwise
    translate_per_second: tuple[float, float] = (0.0, 0.0)  # (x, y) shift in fractions of the width/height per second
    center: tuple[float, float] = (0.5, 0.5)  # (x, y) zoom/rotation centre as fractions of width/height, each 0..1
    loop: bool = False  # make the last frame lead into the first so the file repeats seamlessly
    loop_seconds: float = 1.0  # length of the cross-fade that closes a loop, seconds, > 0
    noise: bool = False  # start from seeded noise instead of an image
    size: tuple[int, int] | None = None  # (width, height) of the animation; None = the input image's size (after max_side), or 640x360 for --noise


@dataclass(frozen=True)
class EncodeConfig:
    """How frames become a file."""

    crf: int = 18  # H.264/VP9 constant rate factor, 0..51; lower = better and bigger
    encoder_preset: str = "medium"  # x264 speed preset (ultrafast .. veryslow)
    audio: bool = True  # mux the source's (or --audio's) sound into the output when there is one


@dataclass(frozen=True)
class Settings:
    """All stages' settings together; what a preset, a manifest job or a command line resolves to."""

    dream: DreamConfig = field(default_factory=DreamConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    schedule: tuple[str, ...] = ()  # keyframe schedules, "name=t:v,t:v[,smooth]" (see schedule.py)
    react: tuple[str, ...] = ()  # audio reactions, "name=feature:lo..hi" (see schedule.py)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly nested dict (fractions become "num/den" strings)."""
        return _jsonable(dataclasses.asdict(self))

    def digest(self) -> str:
        """Stable hash of the settings: a resume only continues frames made with the same one."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **flat: Any) -> "Settings":
        """A copy with flat keys (``step_size=0.02``) changed; validated like any other source."""
        return merge(self, flat, source="overrides")


SECTIONS: dict[str, type] = {
    "dream": DreamConfig,
    "video": VideoConfig,
    "zoom": ZoomConfig,
    "encode": EncodeConfig,
}
_TOP_LEVEL = ("schedule", "react")
# flat key -> section name; names are unique across sections by design
FLAT_INDEX: dict[str, str] = {f.name: sec for sec, cls in SECTIONS.items() for f in fields(cls)}
assert len(FLAT_INDEX) == sum(len(fields(c)) for c in SECTIONS.values()), "setting names must be unique"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}" if obj.denominator != 1 else obj.numerator
    return obj


def parse_fps(value: Any) -> Fraction:
    """'24000/1001', '29.97', 30 or 23.976 -> an exact positive Fraction."""
    try:
        if isinstance(value, Fraction):
            fps = value
        elif isinstance(value, float):
            fps = Fraction(value).limit_denominator(100_000)
        else:
            fps = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"fps {value!r} is not a number: use e.g. 30, 29.97 or 24000/1001") from None
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {value!r}: use e.g. 30 or 24000/1001")
    return fps


def parse_size(value: Any) -> tuple[int, int]:
    """'640x360' or [640, 360] -> (640, 360)."""
    try:
        if isinstance(value, str):
            w, h = value.lower().split("x")
            size = (int(w), int(h))
        else:
            w, h = value
            size = (int(w), int(h))
    except (ValueError, TypeError):
        raise ConfigError(f"size {value!r} is not WIDTHxHEIGHT: use e.g. 640x360") from None
    if size[0] < 16 or size[1] < 16:
        raise ConfigError(f"size {value!r} is too small: use at least 16x16, e.g. 640x360")
    return size


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        if isinstance(value, str):
            a, b = value.split(",")
        else:
            a, b = value
        return (float(a), float(b))
    except (ValueError, TypeError):
        raise ConfigError(f"{name} {value!r} is not a pair: use X,Y e.g. 0.5,0.5") from None


def _coerce(section: str, name: str, value: Any) -> Any:
    """Turn a TOML/CLI value into the field's type, with a one-line error on failure."""
    if value is None:
        return None
    if name == "fps":
        return parse_fps(value)
    if name == "size":
        return parse_size(value)
    if name in ("center", "translate_per_second"):
        return _pair(name, value)
    if name == "layers":
        if isinstance(value, str):
            value = [s for s in value.replace(" ", "").split(",") if s]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"layers {value!r} must be a list of layer names, e.g. mixed3,mixed5")
        return tuple(value)
    default = next(f for f in fields(SECTIONS[section]) if f.name == name).default
    kind = type(default) if default is not None else None
    if name in ("weights", "model"):
        kind = str
    if name in ("max_side", "max_frames"):
        kind = int
    if name == "duration":
        kind = float
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            return str(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} = {value!r} is not a valid {kind.__name__}") from None
    return value


def _check(s: Settings) -> None:
    """Range checks; each failure is one line naming the setting and the allowed range."""
    d, v, z, e = s.dream, s.video, s.zoom, s.encode

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(msg)

    need(d.loss in LOSSES, f"loss {d.loss!r} is unknown: use one of {', '.join(LOSSES)}")
    need(d.precision in PRECISIONS, f"precision {d.precision!r} is unknown: use one of {', '.join(PRECISIONS)}")
    need(d.octaves >= 1, f"octaves must be >= 1, got {d.octaves}")
    need(d.octave_scale > 1.0, f"octave_scale must be > 1, got {d.octave_scale}")
    need(d.steps >= 0, f"steps must be >= 0, got {d.steps}")
    need(d.step_size >= 0, f"step_size must be >= 0, got {d.step_size}")
    need(d.jitter >= 0, f"jitter must be >= 0, got {d.jitter}")
    need(d.tile_size >= 64, f"tile_size must be >= 64 pixels, got {d.tile_size}")
    need(d.max_side is None or d.max_side >= 32, f"max_side must be >= 32 pixels, got {d.max_side}")
    need(d.layers is None or len(d.layers) > 0, "layers must name at least one layer, e.g. mixed3,mixed5")
    need(v.flow in FLOWS, f"flow {v.flow!r} is unknown: use one of {', '.join(FLOWS)}")
    need(v.warp in WARPS, f"warp {v.warp!r} is unknown: use one of {', '.join(WARPS)}")
    need(0.0 <= v.blend <= 1.0, f"blend must be within 0..1, got {v.blend}")
    need(v.warm_steps >= 0, f"warm_steps must be >= 0, got {v.warm_steps}")
    need(v.warm_octaves >= 1, f"warm_octaves must be >= 1, got {v.warm_octaves}")
    need(0.0 < v.warm_step_scale <= 1.0, f"warm_step_scale must be within 0..1 (exclusive of 0), got {v.warm_step_scale}")
    need(0.0 <= v.detail_decay <= 1.0, f"detail_decay must be within 0..1, got {v.detail_decay}")
    need(0.0 < v.scene_cut <= 1.0, f"scene_cut must be within 0..1 (exclusive of 0), got {v.scene_cut}")
    need(v.start >= 0, f"start must be >= 0 seconds, got {v.start}")
    need(v.duration is None or v.duration > 0, f"duration must be > 0 seconds, got {v.duration}")
    need(v.max_frames is None or v.max_frames >= 1, f"max_frames must be >= 1, got {v.max_frames}")
    need(z.seconds > 0, f"seconds must be > 0, got {z.seconds}")
    need(z.zoom_per_second > 0, f"zoom_per_second must be > 0 (1 = no zoom), got {z.zoom_per_second}")
    need(all(0.0 <= c <= 1.0 for c in z.center), f"center must be within 0..1 on both axes, got {z.center[0]},{z.center[1]}")
    need(z.loop_seconds > 0, f"loop_seconds must be > 0, got {z.loop_seconds}")
    need(0 <= e.crf <= 51, f"crf must be within 0..51, got {e.crf}")
    if s.schedule or s.react:
        from .schedule import parse_all  # lazy: schedule.py imports this module

        parse_all(s.schedule, s.react)  # raises ConfigError showing the expected form


def merge(base: Settings, data: Mapping[str, Any], source: str) -> Settings:
    """Apply ``data`` (sectioned like a preset, or flat like a manifest job) on top of ``base``.

    ``source`` names where the data came from, for error messages ("presets/deep.toml", "--steps").
    Unknown sections or keys raise ConfigError naming the source and the key.
    """
    updates: dict[str, dict[str, Any]] = {sec: {} for sec in SECTIONS}
    top: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        try:
            updates[section][key] = _coerce(section, key, value)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{key}] must be a table of settings")
            valid = {f.name for f in fields(SECTIONS[key])}
            for sub, subval in value.items():
                if sub not in valid:
                    raise ConfigError(
                        f"{source}: unknown key {sub!r} in [{key}]; valid keys: {', '.join(sorted(valid))}"
                    )
                put(key, sub, subval)
        elif key in FLAT_INDEX:
            put(FLAT_INDEX[key], key, value)
        elif key in _TOP_LEVEL:
            items = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(i, str) for i in items):
                raise ConfigError(f"{source}: {key} must be a string or a list of strings")
            top[key] = tuple(items)
        else:
            raise ConfigError(f"{source}: unknown key {key!r}; see `dreamvideo presets show default` for valid keys")
    try:
        result = Settings(
            dream=dataclasses.replace(base.dream, **updates["dream"]),
            video=dataclasses.replace(base.video, **updates["video"]),
            zoom=dataclasses.replace(base.zoom, **updates["zoom"]),
            encode=dataclasses.replace(base.encode, **updates["encode"]),
            schedule=top.get("schedule", base.schedule),
            react=top.get("react", base.react),
        )
        _check(result)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return result


def settings_from_dict(data: Mapping[str, Any]) -> Settings:
    """Rebuild Settings from ``to_dict()`` output (used by resume and tests)."""
    return merge(Settings(), data, source="settings")
