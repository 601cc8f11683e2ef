"""Settings: one frozen dataclass per stage, resolved as defaults < preset < manifest < CLI flags.

Every field carries a comment saying what it is, its unit and its range, and has ONE row in
``RULES``: its type, bounds, choices, whether it may vary per frame, and how the command line shows
it. ``merge`` (every entry point: presets, manifests, ``--set``, flags, the Python API) coerces and
checks each value against its row, the schedule grammar reads the same rows, and ``cli.py`` builds
its options from them. A new setting is a field here plus its row, nothing else.

Names are unique across sections, so a flat key (``step_size = 0.02`` in a manifest,
``--schedule step_size=...``) finds its section without ambiguity. Unknown keys are an error, as in
nanoGPT's configurator. Evidence for the defaults lives in bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

from .errors import ConfigError
from .schedule import parse_all
from .timing import parse_fps

LOSSES = ("mean", "meansquare")
FLOWS = ("dis-fast", "dis-medium", "farneback")
WARPS = ("detail", "frame")
ENCODER_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
MAX_SIDE = 8192  # pixels: the largest frame side anywhere (8K); bounds memory before anything runs
WARP_KERNELS = ("linear", "cubic")
COLOR_HOLDS = ("std", "offset")
PRECISIONS = ("float32", "bfloat16", "float16", "auto")


@dataclass(frozen=True)
class DreamConfig:
    """How one image is dreamed: the model, its layers, and the gradient ascent."""

    model: str | None = None  # registry name; None = inception_v3 when its weights can be had, else efficientnet_lite0
    weights: str | None = None  # local weights file (None = env DREAMVIDEO_WEIGHTS, Keras cache, download)
    # Layer specs "name[:channel][=weight]" whose activations are maximised (mixed4:97 = channel 97 of
    # mixed4; mixed3=0.5 = mixed3 at half weight, weights -100..100); None = the model's defaults
    layers: tuple[str, ...] | None = None
    loss: str = "mean"  # "mean" of activations (smooth) or "meansquare" (the classic snippet; harsher)
    octaves: int = 4  # pyramid levels, 1..12; levels whose short side would fall below the model's minimum are dropped
    octave_scale: float = 1.4  # size ratio between octaves, > 1 .. 4
    steps: int = 24  # gradient-ascent steps per octave, 0..1000 (0 = no dreaming, to test camera motion)
    step_size: float = 0.03  # step in units of the image range [-1, 1] per step (std-normalised gradients), 0..1
    jitter: int = 16  # max random roll in pixels per step, 0..256, so tiles and stride grids never show
    octave_detail: float = 1.0  # share of an octave's dream detail carried up to the next, 0..1 (1 = classic)
    tile_size: int = 512  # gradients are computed in tiles of at most this many pixels a side, 64..8192 (memory)
    max_side: int | None = None  # downscale inputs so the longer side is at most this, 32..8192 px; None = keep
    seed: int = 0  # seeds every random choice (rolls, noise), 0..2**31-1; same seed + input + settings = same output
    guide: str | None = None  # image file whose features the dream moves toward (guided dream); None = no guide
    guide_weight: float = 1.0  # blend of the guide's objective with the layers', 0..1 (1 = the guide alone)
    dream_class: int | None = None  # ImageNet class index 0..999 whose logit is raised (a name becomes its index)
    keep_colors: bool = False  # keep the source's colour: only the luminance (YCbCr Y) carries the dream
    mask: str | None = None  # grey image (or video, frame by frame) where white is dreamed, black kept; None = all
    mask_feather: int = 8  # pixels, 0..1024, over which the mask's white fades in from its black edges
    precision: str = "float32"  # model compute dtype: float32, bfloat16, float16 (GPUs), auto (probed); image stays f32


@dataclass(frozen=True)
class VideoConfig:
    """How frames are chained so the dream moves with the scene instead of flickering."""

    flow: str = "dis-medium"  # optical flow on the input frames: "dis-medium", "dis-fast" or "farneback"
    warp: str = "detail"  # carried to the next frame: "detail" (dream minus raw) or the whole dreamed "frame"
    blend: float = 0.0  # raw frame mixed into the warped dream before dreaming, 0..1; > 0 fades the carried dream
    warm_steps: int = 6  # steps per octave, 0..1000, for frames seeded from the previous dream (first frame: `steps`)
    warm_octaves: int = 2  # octaves for seeded frames, 1..12 (at most `octaves`): coarse structure is inherited
    warm_step_scale: float = 0.05  # step size where the flow trusts the carried dream, x step_size, > 0 .. 1
    detail_decay: float = 0.997  # factor on the carried dream detail per frame, 0..1; balances what new content adds
    fresh_step_scale: float = 1.0  # step size where the flow does NOT trust the carried dream (new content), 0..1
    carry_untrusted: float = 1.0  # share of the warped dream kept in the seed where the flow is not trusted, 0..1
    catch_up: float = 0.0  # treat pixels carrying less dream than typical as new content, 0..1 (0 = flow mask only)
    temporal_weight: float = 0.5  # pull per warm step toward the warped previous dream where trusted, 0..1
    warp_kernel: str = "cubic"  # resampling of the carried dream: "linear" or "cubic" (clamped to the 3x3 range)
    color_hold: str = "offset"  # drift control: "offset" (mean of dream - raw held to the previous frame's) or "std"
    deflicker: float = 0.0  # post-pass: share of the flow-warped previous output mixed into trusted pixels, 0..0.9
    scene_cut: float = 0.5  # fraction of pixels the flow cannot explain above which the chain restarts, > 0 .. 1
    coherent: bool = True  # False = dream every frame from its raw frame (boils; kept to compare and measure)
    color_match: bool = True  # hold each dreamed frame's colour mean/std to its source frame's (no drift)
    start: float = 0.0  # seconds into the source where the render starts, 0..1e6
    duration: float | None = None  # seconds of source to render, > 0 .. 1e6; None = to the end
    max_frames: int | None = None  # stop after this many frames, 1..1e7; None = no limit
    # Segmented renders on Ray: the video is cut into this many contiguous segments dreamed in
    # parallel, then joined, 1..1024 (1 = one chain; > 1 needs the `ray` extra).
    segments: int = 1
    # Each segment after the first starts this many seconds early,
    # 0..60 s, dreamed and thrown away, so its chain has settled by its first kept frame.
    preroll: float = 1.0
    join: float = 3.0  # seconds by which adjacent segments overlap, cross-faded, 0..10 s (0 = a hard cut)


@dataclass(frozen=True)
class ZoomConfig:
    """The camera of an infinite zoom: motion is per second and converted to per frame through fps."""

    seconds: float = 10.0  # length of the animation, > 0 .. 86400 s
    fps: Fraction = Fraction(30)  # frames per second, > 0 .. 1000; a fraction such as 24000/1001 stays exact
    zoom_per_second: float = 1.3  # scale factor per second, 0.01..100 (> 1 dives in); per frame = this ** (1/fps)
    rotate_per_second: float = 0.0  # degrees per second, counter-clockwise, -3600..3600
    translate_per_second: tuple[float, float] = (0.0, 0.0)  # camera (x, y) drift, widths/heights per second, -10..10
    center: tuple[float, float] = (0.5, 0.5)  # (x, y) zoom/rotation centre as fractions of width/height, 0..1
    loop: bool = False  # make the last frame lead into the first so the file repeats seamlessly
    loop_seconds: float = 1.0  # length of the cross-fade that closes a loop, > 0 .. 3600 s
    noise: bool = False  # start from seeded noise instead of an image
    size: tuple[int, int] | None = None  # (width, height), 16..8192 px each; None = the image's (after max_side)


@dataclass(frozen=True)
class EncodeConfig:
    """How frames become a file."""

    crf: int = 18  # constant rate factor, lower = better and bigger: 0..51 for H.264, 0..63 for VP9 (.webm)
    encoder_preset: str = "medium"  # x264 speed preset, ultrafast .. veryslow (VP9 maps it to -cpu-used)
    audio: bool = True  # mux the source's (or the zoom's soundtrack's) sound into the output when there is one


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

    def replace(self, **flat: Any) -> Settings:
        """A copy with flat keys (``step_size=0.02``) changed; validated like any other source."""
        return merge(self, flat, source="overrides")

    def get(self, name: str) -> Any:
        """The value of a flat setting name (``settings.get("blend")``)."""
        return getattr(getattr(self, FLAT_INDEX[name]), name)


SECTIONS: dict[str, type] = {
    "dream": DreamConfig,
    "video": VideoConfig,
    "zoom": ZoomConfig,
    "encode": EncodeConfig,
}
TOP_LEVEL = ("schedule", "react")  # list-valued settings outside the sections
# flat key -> section name; names are unique across sections by design
FLAT_INDEX: dict[str, str] = {f.name: sec for sec, cls in SECTIONS.items() for f in fields(cls)}
if len(FLAT_INDEX) != sum(len(fields(c)) for c in SECTIONS.values()):  # pragma: no cover - a developer error
    raise RuntimeError("setting names must be unique across sections")


# --- the rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What one setting accepts, and how the command line shows it.

    ``kind`` is one of: int, float, bool, str, choice, fps, size (WxH), pair (X,Y), layers (names),
    class (an ImageNet index within lo..hi, or a class name).
    Numeric bounds apply to ints, floats, each component of a pair or size, and fps.
    """

    kind: str
    lo: float | None = None  # smallest value (inclusive unless lo_open); every numeric setting has one
    hi: float | None = None  # largest value (inclusive); every numeric setting has one, so typos cannot explode
    lo_open: bool = False  # lo itself is not allowed (value must be > lo)
    choices: tuple[str, ...] = ()  # kind "choice": the accepted names
    optional: bool = False  # None (unset, "automatic") is allowed
    vary: bool = False  # may follow a --schedule or an audio --react, frame by frame
    help: str = ""  # one line for --help (the range and the default are appended)
    panel: str = "Dream"  # --help panel: Dream, Coherence, Input, Camera, Output
    commands: tuple[str, ...] = ("image", "video", "zoom")  # commands that take it as a flag
    flag: str | None = None  # flag spelling when not --name-with-dashes; bools: "--on/--off"

    @property
    def integer(self) -> bool:
        return self.kind == "int"

    def describe(self) -> str:
        """The range in words: 'within 0..1', '> 1 and <= 4', 'one of a, b'."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.lo is None or self.hi is None:
            return "any value"
        if self.lo_open:
            return f"> {_num(self.lo)} and <= {_num(self.hi)}"
        return f"within {_num(self.lo)}..{_num(self.hi)}"

    def ok(self, v: float) -> bool:
        """True if the number ``v`` is inside the bounds (finite, lo..hi)."""
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or v <= self.hi


_DREAM = ("image", "video", "zoom")
_CHAIN = ("video", "zoom")  # settings of frames seeded from the previous one: videos and zooms

RULES: dict[str, Rule] = {
    # dream
    "model": Rule(
        "str",
        optional=True,
        help="Model (see `dreamvideo models`); unset: inception_v3, else the bundled efficientnet_lite0 offline.",
    ),
    "weights": Rule("str", optional=True, help="Local weights file for the model (offline machines)."),
    "layers": Rule(
        "layers",
        optional=True,
        help="Comma-separated layers to dream on, e.g. mixed3,mixed5;"
        " NAME:CHANNEL for one channel, NAME=WEIGHT to weigh it, e.g. mixed4:97,mixed3=0.5"
        " (unset: the model's defaults).",
    ),
    "loss": Rule("choice", choices=LOSSES, help="Objective: mean activation (smooth) or mean square (harsher)."),
    "octaves": Rule("int", 1, 12, vary=True, help="Octave pyramid levels."),
    "octave_scale": Rule("float", 1, 4, lo_open=True, vary=True, help="Size ratio between octaves."),
    "steps": Rule("int", 0, 1000, vary=True, help="Gradient steps per octave (0 = no dreaming)."),
    "step_size": Rule("float", 0, 1, vary=True, help="Step size in [-1, 1] image units."),
    "jitter": Rule("int", 0, 256, vary=True, help="Max random roll per step, pixels."),
    "octave_detail": Rule(
        "float",
        0,
        1,
        vary=True,
        help="Share of each octave's dream detail carried to the next"
        " (1 = classic pyramid; lower = finer octaves dream more from the source).",
    ),
    "precision": Rule(
        "choice",
        choices=PRECISIONS,
        help="Model compute precision: bfloat16 is faster on CPUs with"
        " AVX512_BF16/AMX, float16 on GPUs; auto probes at start-up. The image stays float32.",
    ),
    "tile_size": Rule("int", 64, MAX_SIDE, help="Max tile side for gradients, pixels (bounds memory)."),
    "max_side": Rule("int", 32, MAX_SIDE, optional=True, help="Downscale so the longer side is at most this (px)."),
    "seed": Rule("int", 0, 2**31 - 1, help="Random seed (same seed + input + settings = same output)."),
    "guide": Rule("str", optional=True, help="Guide image: dream toward its features (guided dream)."),
    "guide_weight": Rule(
        "float", 0, 1, vary=True, help="How much the guide steers: 0 = the layers alone, 1 = the guide alone."
    ),
    "dream_class": Rule(
        "class",
        0,
        999,
        optional=True,
        help="ImageNet class to dream toward, by name (e.g. monarch)"
        " or index (models with a classifier: efficientnet_lite0).",
    ),
    "keep_colors": Rule(
        "bool", flag="--keep-colors/--no-keep-colors", help="Dream the luminance only; keep the source's colours."
    ),
    "mask": Rule(
        "str",
        optional=True,
        help="Grey mask image (or a video of the same length): white is dreamed, black left untouched.",
    ),
    "mask_feather": Rule("int", 0, 1024, help="Soft edge of the mask, pixels (inside its white)."),
    # video: coherence
    "flow": Rule(
        "choice", choices=FLOWS, panel="Coherence", commands=("video",), help="Optical flow on the input frames."
    ),
    "warp": Rule(
        "choice",
        choices=WARPS,
        panel="Coherence",
        commands=("video",),
        help="Carry the dream 'detail' (dream minus raw) or the whole dreamed 'frame'.",
    ),
    "blend": Rule(
        "float",
        0,
        1,
        vary=True,
        panel="Coherence",
        commands=("video",),
        help="Raw frame mixed into the warped dream: 0 = all dream, 1 = all raw.",
    ),
    "warm_steps": Rule(
        "int",
        0,
        1000,
        vary=True,
        panel="Coherence",
        commands=_CHAIN,
        help="Steps per octave for frames seeded from the previous one.",
    ),
    "warm_octaves": Rule(
        "int",
        1,
        12,
        vary=True,
        panel="Coherence",
        commands=_CHAIN,
        help="Octaves for seeded frames (at most --octaves).",
    ),
    "warm_step_scale": Rule(
        "float",
        0,
        1,
        lo_open=True,
        panel="Coherence",
        commands=_CHAIN,
        help="Step size of seeded frames relative to --step-size.",
    ),
    "detail_decay": Rule(
        "float",
        0,
        1,
        vary=True,
        panel="Coherence",
        commands=("video",),
        help="Factor on the carried dream detail per frame (< 1: no snowballing).",
    ),
    "fresh_step_scale": Rule(
        "float",
        0,
        1,
        vary=True,
        panel="Coherence",
        commands=("video",),
        help="Step size of seeded frames where the flow does not trust the carried dream"
        " (new content), relative to --step-size.",
    ),
    "carry_untrusted": Rule(
        "float",
        0,
        1,
        panel="Coherence",
        commands=("video",),
        help="Share of the warped dream kept where the flow is not trusted (0 = raw frame there).",
    ),
    "catch_up": Rule(
        "float",
        0,
        1,
        panel="Coherence",
        commands=("video",),
        help="Treat pixels carrying less dream than typical as new content (0 = the flow mask decides).",
    ),
    "temporal_weight": Rule(
        "float",
        0,
        1,
        vary=True,
        panel="Coherence",
        commands=("video",),
        help="Pull per warm step toward the warped previous dream where the flow trusts it.",
    ),
    "warp_kernel": Rule(
        "choice",
        choices=WARP_KERNELS,
        panel="Coherence",
        commands=("video",),
        help="Resampling of the carried dream: bilinear, or bicubic clamped to each 3x3 range.",
    ),
    "color_hold": Rule(
        "choice",
        choices=COLOR_HOLDS,
        panel="Coherence",
        commands=("video",),
        help="Drift control: hold the dream's mean offset to the previous frame's, or the raw std.",
    ),
    "deflicker": Rule(
        "float",
        0,
        0.9,
        panel="Coherence",
        commands=("video",),
        help="Post-pass: share of the flow-warped previous output mixed in (steadier, softer; 0 = off).",
    ),
    "scene_cut": Rule(
        "float",
        0,
        1,
        lo_open=True,
        panel="Coherence",
        commands=("video",),
        help="Fraction of pixels the flow cannot explain above which the chain restarts.",
    ),
    "coherent": Rule(
        "bool",
        panel="Coherence",
        commands=("video",),
        flag="--coherent/--independent",
        help="Chain frames along the flow, or dream every frame from scratch (boils; to compare).",
    ),
    "color_match": Rule(
        "bool",
        panel="Coherence",
        commands=("video",),
        flag="--color-match/--no-color-match",
        help="Hold each frame's colour statistics to its source frame's (no drift).",
    ),
    # video: which part of the input
    "start": Rule("float", 0, 1e6, panel="Input", commands=("video",), help="Start this many seconds into the source."),
    "duration": Rule(
        "float",
        0,
        1e6,
        lo_open=True,
        optional=True,
        panel="Input",
        commands=("video",),
        help="Seconds of source to render (unset: to the end).",
    ),
    "max_frames": Rule(
        "int", 1, 10_000_000, optional=True, panel="Input", commands=("video",), help="Stop after this many frames."
    ),
    # video: segmented renders (--segments)
    "segments": Rule(
        "int",
        1,
        1024,
        panel="Cluster",
        commands=("video",),
        help="Split the video into this many segments rendered in parallel on Ray, then joined "
        "(see --preroll, --join); > 1 implies --ray local if no --ray.",
    ),
    "preroll": Rule(
        "float",
        0,
        60,
        panel="Coherence",
        commands=("video",),
        help="Segments: seconds dreamed before each segment's first kept frame, then dropped.",
    ),
    "join": Rule(
        "float",
        0,
        10,
        panel="Coherence",
        commands=("video",),
        help="Segments: seconds by which adjacent segments overlap, cross-faded.",
    ),
    # zoom: the camera
    "seconds": Rule(
        "float", 0, 86400, lo_open=True, panel="Camera", commands=("zoom",), help="Length of the animation, seconds."
    ),
    "fps": Rule(
        "fps",
        0,
        1000,
        lo_open=True,
        panel="Camera",
        commands=("zoom",),
        help="Frames per second, exact: 30, 29.97 or 24000/1001.",
    ),
    "zoom_per_second": Rule(
        "float",
        0.01,
        100,
        vary=True,
        panel="Camera",
        commands=("zoom",),
        help="Scale factor per second: > 1 dives in, < 1 pulls out.",
    ),
    "rotate_per_second": Rule(
        "float",
        -3600,
        3600,
        vary=True,
        panel="Camera",
        commands=("zoom",),
        help="Degrees per second, counter-clockwise.",
    ),
    "translate_per_second": Rule(
        "pair",
        -10,
        10,
        panel="Camera",
        commands=("zoom",),
        help="Camera drift X,Y in widths/heights per second, e.g. 0.05,0.",
    ),
    "center": Rule(
        "pair",
        0,
        1,
        panel="Camera",
        commands=("zoom",),
        help="Zoom/rotation centre X,Y as fractions of width/height, e.g. 0.3,0.6.",
    ),
    "loop": Rule(
        "bool",
        panel="Camera",
        commands=("zoom",),
        flag="--loop/--no-loop",
        help="Make the last frame lead into the first: the file repeats seamlessly.",
    ),
    "loop_seconds": Rule(
        "float",
        0,
        3600,
        lo_open=True,
        panel="Camera",
        commands=("zoom",),
        help="Length of the cross-fade that closes a loop, seconds.",
    ),
    "noise": Rule(
        "bool",
        panel="Camera",
        commands=("zoom",),
        flag="--noise/--no-noise",
        help="Start from seeded noise instead of an image.",
    ),
    "size": Rule(
        "size",
        16,
        MAX_SIDE,
        optional=True,
        panel="Camera",
        commands=("zoom",),
        help="Animation size WxH, e.g. 640x360 (unset: the image's, after --max-side).",
    ),
    # encode
    "crf": Rule(
        "int",
        0,
        63,
        panel="Output",
        commands=_CHAIN,
        help="Quality, lower = better and bigger: 0..51 for H.264, 0..63 for VP9 (.webm).",
    ),
    "encoder_preset": Rule(
        "choice",
        choices=ENCODER_PRESETS,
        panel="Output",
        commands=_CHAIN,
        help="Encoder speed preset (slower = smaller file).",
    ),
    "audio": Rule(
        "bool",
        panel="Output",
        commands=_CHAIN,
        flag="--audio/--no-audio",
        help="Keep the source's sound (zoom: the --soundtrack's).",
    ),
}
# The layer gallery (`dreamvideo layers`) takes the dream knobs that shape a tile as flags too.
for _name in (
    "model",
    "weights",
    "loss",
    "octaves",
    "octave_scale",
    "steps",
    "step_size",
    "jitter",
    "tile_size",
    "max_side",
    "seed",
    "keep_colors",
    "precision",
):
    RULES[_name] = dataclasses.replace(RULES[_name], commands=(*RULES[_name].commands, "layers"))
if set(RULES) != set(FLAT_INDEX):  # pragma: no cover - a developer error, caught by any import
    raise RuntimeError(f"RULES and the settings differ: {sorted(set(RULES) ^ set(FLAT_INDEX))}")

VARYING: dict[str, Rule] = {name: rule for name, rule in RULES.items() if rule.vary}  # schedulable settings


def default_value(name: str) -> Any:
    """The built-in default of a flat setting name."""
    return Settings().get(name)


# --- coercion --------------------------------------------------------------------------------------


def _num(x: float) -> str:
    return format(x, ".10g")


def _show(value: Any) -> str:
    """A value for an error message: its repr, cut short (a 50 MB string stays one line)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(name: str, value: Any, rule: Rule, integer: bool) -> float | int:
    what = "a whole number" if integer else "a number"
    bad = ConfigError(f"{name} = {_show(value)} is not {what}: use a value {rule.describe()}")
    if isinstance(value, bool):  # `steps = true` would silently mean 1
        raise bad
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not integer or not value.strip().lstrip("+-").isdigit() else int(value)
        except ValueError:
            raise bad from None
    if not isinstance(value, (int, float)):
        raise bad
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} = {_show(value)} is not a finite number: use a value {rule.describe()}")
    if integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise bad
            value = int(value)
    else:
        value = float(value)
    if not rule.ok(value):
        raise ConfigError(f"{name} must be {rule.describe()}, got {_show(value)}")
    return value


def _pair(name: str, value: Any, rule: Rule) -> tuple[float, float]:
    form = "X,Y e.g. 0.5,0.5"
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
    except TypeError:
        raise ConfigError(f"{name} {_show(value)} is not a pair: use {form}") from None
    if len(parts) != 2:
        raise ConfigError(f"{name} {_show(value)} is not a pair: use {form}")
    return tuple(float(_number(name, p, rule, integer=False)) for p in parts)  # type: ignore[return-value]


def parse_size(value: Any) -> tuple[int, int]:
    """'640x360' or [640, 360] -> (640, 360), each side within 16..MAX_SIDE pixels."""
    rule = RULES["size"]
    form = "use WIDTHxHEIGHT, e.g. 640x360"
    try:
        parts = value.lower().split("x") if isinstance(value, str) else list(value)
    except (TypeError, AttributeError):
        raise ConfigError(f"size {_show(value)} is not WIDTHxHEIGHT: {form}") from None
    if len(parts) != 2:
        raise ConfigError(f"size {_show(value)} is not WIDTHxHEIGHT: {form}")
    try:
        w, h = (int(_number("size", p, rule, integer=True)) for p in parts)
    except ConfigError:
        raise ConfigError(f"size {_show(value)} must be two whole numbers {rule.describe()} pixels: {form}") from None
    return (w, h)


def _layers(value: Any) -> tuple[str, ...]:
    bad = ConfigError(f"layers {_show(value)} must be a list of layer names, e.g. mixed3,mixed5")
    if isinstance(value, str):
        value = [s for s in value.replace(" ", "").split(",") if s]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise bad
    if not value:
        raise ConfigError("layers must name at least one layer, e.g. mixed3,mixed5")
    if len(value) > 64 or any(len(v) > 200 for v in value):
        raise bad
    from .objective import parse_layer_spec

    for v in value:
        parse_layer_spec(v)  # NAME[:CHANNEL][=WEIGHT]; names and channels are checked against the model later
    return tuple(v.strip() for v in value)


def coerce(name: str, value: Any) -> Any:
    """A TOML/CLI/API value for the flat setting ``name``, converted to its type and checked against
    its rule; ConfigError (one line, with the accepted range) otherwise."""
    rule = RULES[name]
    if value is None:
        if rule.optional:
            return None
        raise ConfigError(f"{name} cannot be unset: use a value {rule.describe()}")
    kind = rule.kind
    if kind in ("int", "float"):
        return _number(name, value, rule, integer=kind == "int")
    if kind == "fps":
        return parse_fps(value)
    if kind == "size":
        return parse_size(value)
    if kind == "pair":
        return _pair(name, value, rule)
    if kind == "layers":
        return _layers(value)
    if kind == "class":
        from .classes import resolve_class

        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return int(_number(name, value, rule, integer=True))
        if not isinstance(value, str):
            raise ConfigError(
                f"{name} = {_show(value)} is not a class: give a name (e.g. monarch) or an index {rule.describe()}"
            )
        return resolve_class(value[:200])
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.strip().lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name} = {_show(value)} is not true or false")
    if not isinstance(value, str):
        raise ConfigError(f"{name} = {_show(value)} is not a string")
    if kind == "choice":
        if value not in rule.choices:
            close = difflib.get_close_matches(value, rule.choices, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name} {_show(value)} is unknown{hint}: use one of {', '.join(rule.choices)}")
        return value
    if not value.strip() or len(value) > 4096 or "\x00" in value:
        raise ConfigError(f"{name} = {_show(value)} is not a usable name: give a non-empty name or path")
    return value


def _check(s: Settings) -> None:
    """Rules that span settings, and the schedule/reaction specs (read against the same rows)."""
    parse_all(s.schedule, s.react, RULES)  # raises ConfigError showing the expected form


def _spec_list(key: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        example = "step_size=0:0.01,10:0.03" if key == "schedule" else "step_size=loudness:0.01..0.04"
        raise ConfigError(f'{key} must be a string or a list of strings, e.g. {key} = ["{example}"]')
    return tuple(items)


def _spec_setting(spec: str) -> str:
    """The setting a schedule/reaction spec drives: 'step-size=...' -> 'step_size'."""
    return spec.split("=", 1)[0].strip().replace("-", "_")


def _layered_specs(base: Settings, top: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Schedules and reactions after a source gives some: for each setting the new source names, its
    specs replace the base's (a flag's schedule replaces a preset's reaction of the same setting);
    the base's specs for other settings are kept."""
    given = {_spec_setting(spec) for key in TOP_LEVEL for spec in top.get(key, ())}
    out = []
    for key in TOP_LEVEL:
        kept = tuple(spec for spec in getattr(base, key) if _spec_setting(spec) not in given)
        out.append(kept + tuple(top.get(key, ())))
    return out[0], out[1]


def unknown_key(key: str, valid: list[str] | tuple[str, ...], where: str = "") -> ConfigError:
    """The error for an unknown key, with the closest valid one suggested."""
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {key!r}{where}{hint}; see `dreamvideo presets show default` for valid keys")


def merge(base: Settings, data: Mapping[str, Any], source: str) -> Settings:
    """Apply ``data`` (sectioned like a preset, or flat like a manifest job) on top of ``base``.

    ``source`` names where the data came from, for error messages ("presets/deep.toml", "command line").
    Unknown sections or keys, and values outside their rule, raise ConfigError naming the source
    and the key; nothing is half-applied.

    Args:
        base: the settings to start from (not changed).
        data: the settings to apply: sections (``{"dream": {...}}``), flat keys (``{"strength": 1.5}``),
            and the top-level ``schedule`` / ``react`` lists.
        source: where ``data`` came from, named in error messages.

    Returns:
        New Settings: ``base`` with ``data`` applied.

    Raises:
        ConfigError: ``data`` is not a table, or a section, key or value is unknown or out of its rule.
    """
    updates: dict[str, dict[str, Any]] = {sec: {} for sec in SECTIONS}
    top: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        try:
            updates[FLAT_INDEX[key]][key] = coerce(key, value)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: settings must be a table of KEY = VALUE")
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{key}] must be a table of settings")
            valid = [f.name for f in fields(SECTIONS[key])]
            for sub, subval in value.items():
                if sub not in valid:
                    close = difflib.get_close_matches(str(sub), valid, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ConfigError(
                        f"{source}: unknown key {sub!r} in [{key}]{hint}; valid keys: {', '.join(sorted(valid))}"
                    )
                put(sub, subval)
        elif key in FLAT_INDEX:
            put(key, value)
        elif key in TOP_LEVEL:
            try:
                top[key] = _spec_list(key, value)
            except ConfigError as err:
                raise ConfigError(f"{source}: {err}") from None
        else:
            err = unknown_key(str(key), [*FLAT_INDEX, *SECTIONS, *TOP_LEVEL])
            raise ConfigError(f"{source}: {err}")
    schedule, react = _layered_specs(base, top)
    try:
        result = Settings(
            dream=dataclasses.replace(base.dream, **updates["dream"]),
            video=dataclasses.replace(base.video, **updates["video"]),
            zoom=dataclasses.replace(base.zoom, **updates["zoom"]),
            encode=dataclasses.replace(base.encode, **updates["encode"]),
            schedule=schedule,
            react=react,
        )
        _check(result)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return result


def settings_from_dict(data: Mapping[str, Any]) -> Settings:
    """Rebuild Settings from ``to_dict()`` output (used by resume and tests).

    Args:
        data: a mapping as ``Settings.to_dict()`` writes it (sections, ``schedule`` and ``react``).

    Returns:
        The Settings: the defaults with ``data`` applied.

    Raises:
        ConfigError: an unknown key or a value out of its rule.
    """
    return merge(Settings(), data, source="settings")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}" if obj.denominator != 1 else obj.numerator
    return obj
