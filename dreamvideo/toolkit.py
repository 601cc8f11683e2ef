"""The driver toolkit: what every driver of the stages (image, video, zoom, batch) shares, written once.

- the result and callback types (``RenderResult``, ``ProgressFn``, ``NoteFn``, ``noop``);
- ``output_target``: THE check of an output (path, kind, writable, not an input), resolved once;
- ``RunContext``: notes, the work folder (with its "resuming" / restart notes), and the settings
  JSON written once, with the caller's extra keys (a batch adds its manifest and job);
- the frame rules: ``seed_for_frame``, ``match_color`` (the colour hold), ``to_uint8``, the
  per-frame settings (``frame_settings``: schedule/reaction values applied through the settings,
  validated) and the warm-frame rule (``dream_params``);
- ``build_timeline``: the per-frame values of schedules and audio reactions.

No I/O of media here beyond what encode/decode/resume do for it; the library never prints.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .audio import analyze_file, load_features, save_features
from .config import RULES, Settings
from .dream import DreamParams
from .encode import VIDEO_KINDS, FrameWriter, check_crf, check_output_path, open_writer, output_kind, write_error
from .errors import ConfigError, InputError
from .files import sibling_name, write_atomic
from .model import device_description  # TensorFlow itself is imported only when a device is asked for
from .resume import WorkDir, control_identity
from .schedule import Timeline, parse_all

ProgressFn = Callable[[int, "int | None"], None]  # (frames done, total estimate or None)
NoteFn = Callable[[str], None]  # one notice, one line

IMAGE_KINDS = ("image",)  # output kinds the image driver writes
__all__ = [
    "IMAGE_KINDS",
    "VIDEO_KINDS",
    "NoteFn",
    "OutputTarget",
    "ProgressFn",
    "RenderResult",
    "RunContext",
    "build_timeline",
    "dream_params",
    "frame_settings",
    "match_color",
    "noop",
    "open_output",
    "output_target",
    "report_path",
    "seed_for_frame",
    "settings_path",
    "to_uint8",
    "versions",
    "write_settings_file",
]


def noop(*_: Any) -> None:
    """The default progress/note callback: does nothing."""


@dataclass
class RenderResult:
    """What a render produced."""

    output: Path  # the finished file or folder
    width: int  # frame width in pixels (before any even-size padding by the encoder)
    height: int  # frame height in pixels
    frames: int  # frames in the output (1 for an image)
    model: str  # the model that dreamed
    seconds: float  # wall time of the render
    settings_path: Path  # the JSON beside the output
    resumed_frames: int = 0  # finished frames reused from an interrupted run
    metrics: dict[str, float] = field(default_factory=dict)  # flicker, strength, drift (videos)
    notes: list[str] = field(default_factory=list)  # the notices that were reported
    warnings: list[str] = field(default_factory=list)  # output that is not what was asked (e.g. a damaged input)


# --- the output target ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputTarget:
    """An output resolved once: its path and its kind (encode.OUTPUT_KINDS: 'h264', 'vp9', 'gif',
    'frames' for a PNG folder, 'image'). Pass it on instead of the path, so nothing downstream
    guesses the kind again (pathlib drops the '/' of "run.6/", which would then read as '.6')."""

    path: Path  # the output as given (not resolved: messages show the user's spelling)
    kind: str  # one of encode.OUTPUT_KINDS

    def __fspath__(self) -> str:
        return str(self.path)


def output_target(
    output: str | Path | OutputTarget,
    inputs: Sequence[str | Path | None] = (),
    *,
    allowed: Collection[str] | None = None,
    crf: int | None = None,
) -> OutputTarget:
    """Check an output once (encode.check_output_path) and return its path and kind.

    ``output``: a path ("out/" or "run.6/" as text for a PNG-frames folder) or a target resolved
    before (its kind is kept). ``inputs``: files the render reads (None entries are skipped); the
    output may be none of them. ``allowed``: the kinds this driver writes (IMAGE_KINDS, VIDEO_KINDS).
    ``crf``: the encode quality, checked against this output's codec (H.264 0..51, VP9 0..63)
    before any frame is dreamed. OutputKindError for another kind, OutputError for an unwritable
    or clashing output, ConfigError for a crf the codec cannot take.
    """
    if isinstance(output, OutputTarget):
        given: str | Path = output.path
        kind: str | None = output.kind
    else:
        given, kind = output, None  # text keeps its trailing '/': output_kind reads it as a folder
    kind = check_output_path(given, [p for p in inputs if p is not None], allowed=allowed, kind=kind)
    if crf is not None and kind in ("h264", "vp9"):
        check_crf(kind, crf)
    return OutputTarget(Path(given), kind)


def open_output(
    target: OutputTarget,
    fps: Fraction,
    size: tuple[int, int],
    settings: Settings,
    *,
    audio_from: Path | None,
    audio_start: float,
    audio_duration: float | None,
) -> FrameWriter:
    """encode.open_writer for a driver's checked output with the settings' encoder choices (crf, x264
    preset); ``size`` is (width, height) in pixels, ``audio_from`` the file whose sound is muxed (None =
    silent), from ``audio_start`` s for ``audio_duration`` s (None = to its end)."""
    return open_writer(
        target.path,
        fps,
        size,
        crf=settings.encode.crf,
        encoder_preset=settings.encode.encoder_preset,
        audio_from=audio_from,
        audio_start=audio_start,
        audio_duration=audio_duration,
        kind=target.kind,
    )


def sibling_of(output: str | Path | OutputTarget, suffix: str) -> Path:
    """A file beside an output named after it: (dream.mp4, ".report.png") -> dream.report.png; a
    frames folder keeps its whole name (frames/ -> frames.report.png). Shortened to fit beside a
    long name (files.sibling_name)."""
    if isinstance(output, OutputTarget):
        path, kind = output.path, output.kind
    else:
        path, kind = Path(output), output_kind(output)
    stem = path.stem if kind != "frames" else path.name
    return path.parent / sibling_name(stem, "", suffix)


def settings_path(output: str | Path | OutputTarget) -> Path:
    """The settings JSON beside an output: dream.mp4 -> dream.settings.json, frames/ -> frames.settings.json."""
    return sibling_of(output, ".settings.json")


def report_path(output: str | Path | OutputTarget) -> Path:
    """The --report figure beside an output: dream.mp4 -> dream.report.png, frames/ -> frames.report.png."""
    return sibling_of(output, ".report.png")


def versions() -> dict[str, str]:
    """Versions of everything that shapes the output, for the settings file."""
    from . import __version__

    out = {"dreamvideo": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "cv2", "imageio_ffmpeg"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except ImportError:  # pragma: no cover
            out[name] = "missing"
    return out


def write_settings_file(output: str | Path | OutputTarget, settings: Settings, extra: Mapping[str, Any]) -> Path:
    """Resolved settings, command, versions, timings and metrics, as JSON beside the output (atomic)."""
    path = settings_path(output)
    shown = output.path if isinstance(output, OutputTarget) else output
    doc = {
        "output": str(shown),
        "settings": settings.to_dict(),
        "digest": settings.digest(),
        "versions": versions(),
        "device": device_description(),
        **extra,
    }
    try:  # the guide's and mask's content, which batch compares before calling a job done
        controls = control_identity(settings)
    except InputError:
        controls = {}  # removed since the render read it: the output stands, unrecorded
    if controls:
        doc["control_identity"] = controls
    try:
        write_atomic(path, json.dumps(doc, indent=2, default=str))
    except OSError as err:  # a full disk, a removed folder: one line that says which
        raise write_error(path, err) from None
    return path


# --- the run context -----------------------------------------------------------------------------


class RunContext:
    """One render's bookkeeping: the notes it reported, its work folder, its settings JSON.

    ``record``: extra keys for the settings JSON from whoever called the driver (a batch adds
    ``{"batch": {...}}``); they are written with the driver's own keys, once, at ``finish``.
    """

    def __init__(
        self,
        target: OutputTarget,
        settings: Settings,
        *,
        command: str | None = None,
        on_note: NoteFn = noop,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.command = command
        self.on_note = on_note
        self.record = dict(record or {})
        self.notes: list[str] = []
        self.started = time.perf_counter()
        self.work: WorkDir | None = None

    def note(self, message: str) -> None:
        """Report a notice now and keep it for the result."""
        self.notes.append(message)
        self.on_note(message)

    def seconds(self) -> float:
        """Wall time since the context was made."""
        return time.perf_counter() - self.started

    def open_work(
        self,
        source: Any,
        resume: bool = True,
        *,
        limit: int | None = None,
        plan: tuple[int | None, tuple[int, int]] | None = None,
    ) -> int:
        """Open the work folder beside the output (resume.WorkDir: it takes the output's lock, so a
        second render of the same output fails with BusyError) and note a restart or a resume.

        ``source``: the input identity a resume must match; ``limit``: at most this many finished
        frames are kept; ``plan``: (frames, (width, height)) of the render, to warn up front when
        the disk looks short of what the work folder will need. Returns the finished frames to reuse.
        """
        self.work = WorkDir(self.target.path, self.settings.digest(), source)
        done = self.work.open(resume)
        if limit is not None:
            done = min(done, limit)
        if self.work.restarted_reason:
            self.note(self.work.restarted_reason)
        if self.work.resume_note:
            self.note(self.work.resume_note)
        if done:
            self.note(f"resuming: {done} finished frames kept from the interrupted render")
        if plan is not None:
            short = self.work.plan(plan[0], plan[1], copies=2 if self.target.kind == "frames" else 1)
            if short:
                self.note(short)
        return done

    def finish(self, extra: Mapping[str, Any]) -> Path:
        """Write the settings JSON (command, the driver's ``extra``, the caller's record) and
        remove the work folder: the render is complete. Returns the JSON's path."""
        path = write_settings_file(self.target, self.settings, {"command": self.command, **extra, **self.record})
        if self.work is not None:
            self.work.remove()
        return path


# --- frame rules ---------------------------------------------------------------------------------


def seed_for_frame(seed: int, index: int) -> int:
    """Each frame's seed depends only on the settings' seed and its index (exact resume)."""
    return (seed * 1_000_003 + index) % (2**31 - 1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float 0..255 (any shape) to uint8: rounded to nearest, clipped. The one rule for saved frames."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def channel_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of each channel of an HxWx3 image: two float32 (3,) arrays.

    OpenCV sums in float64 in one pass: ~100x faster than numpy's ``reshape(-1, 3).mean(0)`` on a
    1280x720 frame (0.1 against 13 ms) and exact, where numpy's float32 column sums drift by ~0.005.
    """
    import cv2

    mean, std = cv2.meanStdDev(np.ascontiguousarray(image, dtype=np.float32))
    return mean.ravel().astype(np.float32), std.ravel().astype(np.float32)


def channel_mean(image: np.ndarray) -> np.ndarray:
    """Mean of each channel of an HxWx3 image: float32 (3,), summed in float64 (see channel_stats)."""
    import cv2

    return np.asarray(cv2.mean(np.ascontiguousarray(image, dtype=np.float32))[:3], dtype=np.float32)


def match_color(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Hold ``image``'s per-channel mean and std to ``reference``'s (float32 0..255 in and out).

    This is the drift control: a chain of dreams otherwise slides brighter or darker over
    hundreds of frames. Local dream colour survives; only the global statistics are pinned.
    """
    img = image.astype(np.float32)
    m_i, s_i = channel_stats(img)
    m_r, s_r = channel_stats(reference)
    return np.clip((img - m_i) * ((s_r + 1e-6) / (s_i + 1e-6)) + m_r, 0.0, 255.0)


def frame_settings(settings: Settings, values: Mapping[str, Any] | None) -> Settings:
    """The settings of one frame: ``values`` (a schedule's or reaction's flat setting -> value at
    this frame) applied through ``Settings.replace``, so they are validated like any setting.

    The copy drops schedule/react (already applied; re-parsing them every frame would cost for nothing).
    """
    if not values:
        return settings
    return dataclasses.replace(settings, schedule=(), react=()).replace(**dict(values))


def dream_params(frame: Settings, *, warm: bool, step_scale: float | None = None) -> Any:
    """The dream.DreamParams of one frame (``frame`` from frame_settings).

    The warm-frame rule: a frame seeded from the previous dream (``warm``) is dreamed with
    ``warm_steps`` over min(``warm_octaves``, ``octaves``) at ``step_size * warm_step_scale``;
    ``steps`` 0 disables all dreaming, seeded frames included. ``step_scale`` replaces
    ``warm_step_scale`` (zoom passes 1.0: its camera magnifies the picture, so detail must grow anew).
    """
    d, v = frame.dream, frame.video
    if not warm:
        return DreamParams.from_config(d)
    scale = v.warm_step_scale if step_scale is None else float(step_scale)
    steps = v.warm_steps if d.steps > 0 else 0
    return DreamParams.from_config(
        d, steps=steps, step_size=float(d.step_size) * scale, octaves=min(int(v.warm_octaves), int(d.octaves))
    )


# --- schedules and reactions ---------------------------------------------------------------------


def build_timeline(
    settings: Settings,
    media: Path | None,
    fps: Fraction,
    n_frames: int | None,
    start: float,
    duration: float | None = None,
    cache: Path | None = None,
) -> Any:
    """Per-frame values from schedules and audio reactions (schedule.Timeline), or None when there are none.

    Reactions analyse the sound of ``media`` (the input video, or zoom's sound track) from ``start``
    for ``duration`` seconds, aligned to the render's frames; the features are cached in ``cache``
    (the work folder) so a resumed render reuses them.
    """
    if not settings.schedule and not settings.react:
        return None

    schedules, reactions = parse_all(settings.schedule, settings.react, RULES)
    features = None
    if reactions:
        if media is None:
            raise ConfigError("--react needs a sound track: give an input with audio, or a sound track for zoom")
        if cache is not None and cache.is_file():
            features = load_features(cache)
        if features is None or features.fps != fps:
            try:
                features = analyze_file(media, fps, start=start, duration=duration, n_frames=n_frames)
            except InputError as err:
                raise ConfigError(f"--react needs a sound track, but {err}") from None
            if cache is not None:
                save_features(features, cache)
    total = n_frames if n_frames is not None else (features.n_frames if features else 0)
    return Timeline(schedules, reactions, fps, total, features)
