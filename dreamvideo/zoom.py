"""The infinite zoom: from one image (or seeded noise), each frame is the previous dreamed frame moved
by the camera a little, then dreamed again with a warm start.

Camera. Motion is given per second and turned into per-frame steps through the exact fps. The
camera is a continuous motion (a one-parameter group of similarity transforms): content at screen
position x (complex x + iy, pixels, y down) moves as

    dx/dt = a (x - c) + v,    a = ln(zoom_per_second) - i * radians(rotate_per_second)
                              v = -(tx * width + i * ty * height)

so over ``dt`` seconds  x' = c + e^(a dt) (x - c) + v (e^(a dt) - 1) / a. Hence the zoom per frame
is ``zoom_per_second ** (1 / fps)`` (geometric, never ``* 30 / fps``), n frames compose to exactly
``camera_matrix(n / fps)``, and the motion per second is the same at any frame rate.
Conventions: zoom > 1 dives in (content grows away from ``center``); rotation is
counter-clockwise on screen, in degrees per second; ``translate_per_second = (tx, ty)`` moves the
CAMERA right/down by tx widths / ty heights per second (the content slides the other way);
``center`` = (x, y) fractions of width/height, the fixed point of zoom and rotation.

Resampling is sub-pixel exact on float32 (Catmull-Rom, see ``_CUBIC_SHARE``; reflected border: never
black corners); the transform is never rounded to whole pixels, so slow zooms glide, not step.

Frames. Frame 0 is the start image dreamed with the full settings; frame k is frame k-1 (the saved
uint8 frame, so a resumed render continues bit for bit) moved by one camera step and dreamed with
``warm_steps`` over ``warm_octaves``. Colour statistics are held to the start image's (the source
image, or the seeded noise), so long dives neither grey out, darken nor saturate. With nothing to
dream (steps or step_size 0) frame k is the start image moved by the accumulated camera in one
resampling: a sharp, exact preview of the motion at any fps.

Loop (``--loop``). With N output frames and L = loop_seconds * fps fade frames, the chain runs for
N + L frames F_0 .. F_{N+L-1} and the output is

    O_k = (1 - k/L) * F_{N+k} + (k/L) * F_k    for k < L      (contrast restored after the mix)
    O_k = F_k                                  for k >= L

so the wrap from O_{N-1} = F_{N-1} to O_0 = F_N is one ordinary step of the chain: the seam is a
step like any other, and the motion never stops (both layers of the fade move with the same
camera). The fade happens at the start of the file, where the dive is dissolved into its own head.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .config import RULES, Settings, ZoomConfig
from .errors import ConfigError, InputError
from .timing import frame_count
from .toolkit import (
    VIDEO_KINDS,
    NoteFn,
    OutputTarget,
    ProgressFn,
    RenderResult,
    RunContext,
    build_timeline,
    channel_stats,
    dream_params,
    frame_settings,
    match_color,
    noop,
    open_output,
    output_target,
    seed_for_frame,
    to_uint8,
)

NOISE_SIZE = (640, 360)  # (width, height) of a --noise animation when no --size is given
_NOISE_STD = 40.0  # per-channel std of the start noise, 0..255 units
# Resampling kernel, from what OpenCV resamples at exact positions: 2/3 of OpenCV's bicubic (Keys,
# a = -0.75) plus 1/3 of Keys(0), which is bilinear at smoothstep-moved positions. Keys(a) is linear
# in a, so along each axis this is Catmull-Rom (Keys, a = -0.5) exactly, which reproduces linear
# ramps: a chain of hundreds of resamplings keeps positions exact. OpenCV's bicubic alone does not
# (60 steps of a 1.5x/s zoom at 60 fps end 3 px off: a 1.59x zoom, not 1.5x) and grows checkerboard
# ringing under the colour hold; bilinear alone keeps positions but smears radially (zoom blur).
_CUBIC_SHARE = 2.0 / 3.0


# --- counts --------------------------------------------------------------------------------------


def loop_frame_count(zoom: ZoomConfig, n_frames: int) -> int:
    """Fade frames L that close a loop: round(loop_seconds * fps), at least 1, at most the frames there are."""
    return max(1, min(frame_count(zoom.loop_seconds, zoom.fps), n_frames))


# --- camera --------------------------------------------------------------------------------------


def _phi(z: complex) -> complex:
    """(e^z - 1) / z, exact near 0."""
    if abs(z) < 1e-8:
        return 1.0 + z / 2.0
    return (cmath.exp(z) - 1.0) / z


def camera_matrix(
    dt: float,
    size: tuple[int, int],
    zoom: ZoomConfig,
    *,
    zoom_per_second: float | None = None,
    rotate_per_second: float | None = None,
) -> np.ndarray:
    """The 2x3 affine (float64, cv2.warpAffine's forward convention: dst = M @ [x, y, 1]) that moves
    content by the camera over ``dt`` seconds, for frames of ``size`` = (width, height) pixels.

    ``zoom_per_second`` / ``rotate_per_second`` override the config's (per-frame schedules).
    camera_matrix(a) composed with camera_matrix(b) equals camera_matrix(a + b) exactly (constant rates).
    """
    w, h = int(size[0]), int(size[1])
    zps = zoom.zoom_per_second if zoom_per_second is None else float(zoom_per_second)
    rps = zoom.rotate_per_second if rotate_per_second is None else float(rotate_per_second)
    if zps <= 0:
        raise ConfigError(f"zoom_per_second must be > 0 (1 = no zoom), got {zps}")
    a = complex(math.log(zps), -math.radians(rps))  # minus: y points down, so this turns counter-clockwise on screen
    v = -complex(zoom.translate_per_second[0] * w, zoom.translate_per_second[1] * h)
    c = complex(zoom.center[0] * (w - 1), zoom.center[1] * (h - 1))  # pixel centres sit on integers
    m = cmath.exp(a * dt)
    t = c - m * c + v * dt * _phi(a * dt)
    return np.array([[m.real, -m.imag, t.real], [m.imag, m.real, t.imag]], dtype=np.float64)


def step_transform(
    fps: Fraction | float, size: tuple[int, int], zoom: ZoomConfig, values: dict[str, Any] | None = None
) -> np.ndarray:
    """One frame's camera step at ``fps``: camera_matrix(1 / fps), with per-frame ``values``
    (``zoom_per_second``, ``rotate_per_second`` from a schedule or audio reaction) applied."""
    values = values or {}
    dt = float(1 / Fraction(fps))  # Fraction takes a float exactly
    return camera_matrix(
        dt, size, zoom, zoom_per_second=values.get("zoom_per_second"), rotate_per_second=values.get("rotate_per_second")
    )


def transform(img: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Move an HxWx3 image (any dtype, 0..255) by the 2x3 affine ``M``: float32 0..255 out, same size.

    Resampled with Catmull-Rom at exact sub-pixel positions (never rounded to whole pixels; OpenCV
    5, which pyproject requires, warps at exact positions where 4.x snapped them to 1/32 px), so slow
    zooms glide and a chain of hundreds of steps keeps positions exact and neither rings nor smears.
    Borders are reflected (BORDER_REFLECT_101): content outside the frame is the frame's own mirror,
    never black.
    """
    import cv2

    src = np.asarray(img, dtype=np.float32)
    h, w = src.shape[:2]
    M = np.asarray(M, dtype=np.float64)
    # 2/3 of OpenCV's bicubic (Keys -0.75) + 1/3 of bilinear at smoothstep-moved positions = Catmull-Rom.
    cubic = cv2.warpAffine(src, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    sx, sy = _source_positions(M, w, h)
    x0, y0 = np.floor(sx), np.floor(sy)
    mx = (x0 + _smoothstep(sx - x0)).astype(np.float32)
    my = (y0 + _smoothstep(sy - y0)).astype(np.float32)
    smooth = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(_CUBIC_SHARE * cubic + (1.0 - _CUBIC_SHARE) * smooth, 0.0, 255.0)


def _source_positions(M: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel of the forward affine ``M`` samples its input (float64 x, y maps)."""
    import cv2

    inv = cv2.invertAffineTransform(M)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2], inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Keys(0) weights as a bilinear position: 3t^2 - 2t^3."""
    return t * t * (3.0 - 2.0 * t)


# --- start images --------------------------------------------------------------------------------


def noise_image(size: tuple[int, int], seed: int) -> np.ndarray:
    """Seeded coloured cloud noise, HxWx3 float32 0..255 (mean 128, std 40 per channel): fine and
    coarse grain together, so a model finds shapes at every octave."""
    import cv2

    w, h = int(size[0]), int(size[1])
    rng = np.random.default_rng(seed)
    acc = np.zeros((h, w, 3), dtype=np.float32)
    for cell in (32, 16, 8, 4, 2):
        gw, gh = max(2, -(-w // cell) + 1), max(2, -(-h // cell) + 1)
        grid = rng.standard_normal((gh, gw, 3)).astype(np.float32)
        acc += math.sqrt(cell) * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    acc -= acc.reshape(-1, 3).mean(0)
    acc *= _NOISE_STD / (acc.reshape(-1, 3).std(0) + 1e-6)
    return np.clip(acc + 128.0, 0.0, 255.0).astype(np.float32)


def fit_to_size(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover (width, height) and crop the centre: the aspect ratio is kept, nothing is stretched."""
    import cv2

    w, h = int(size[0]), int(size[1])
    ih, iw = img.shape[:2]
    if (iw, ih) == (w, h):
        return img
    scale = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    big = cv2.resize(img, (nw, nh), interpolation=interp)
    x, y = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(big[y : y + h, x : x + w])


def start_image(input: Path | None, settings: Settings) -> np.ndarray:
    """The picture the dive starts from, HxWx3 float32 0..255, at the animation's size.

    An input image is downscaled by max_side, then (with ``size``) scaled to cover and centre-cropped;
    noise is seeded by the settings' seed at ``size`` (default 640x360, then max_side)."""
    from .decode import read_image, resize_max_side

    z = settings.zoom
    if input is not None:
        img = resize_max_side(read_image(input), settings.dream.max_side)
        if z.size is not None:
            img = fit_to_size(img, z.size)
        return img.astype(np.float32)
    size = z.size
    if size is None:
        w, h = NOISE_SIZE
        m = settings.dream.max_side
        if m is not None and max(w, h) > m:
            w, h = round(w * m / max(w, h)), round(h * m / max(w, h))
        size = (w, h)
    return noise_image(size, settings.dream.seed)


# --- the chain -----------------------------------------------------------------------------------


def dream_frame(
    engine: Any,
    settings: Settings,
    index: int,
    prev: np.ndarray | None,
    start: np.ndarray,
    values: dict[str, Any] | None = None,
    step: np.ndarray | None = None,
    controls: Any = None,
) -> np.ndarray:
    """Frame ``index`` of the dive, HxWx3 uint8.

    ``prev`` = frame index-1 as saved (uint8), None for frame 0 (which dreams ``start`` with the full
    settings); ``values`` = this frame's schedule/reaction overrides of flat settings; ``step`` = this
    frame's camera step (default: step_transform at the settings' fps with ``values``); ``controls``
    (controls.Controls: keep_colors, mask) treat the undreamed, camera-moved frame as the source.
    Seeded frames are dreamed with ``warm_steps`` over ``warm_octaves`` at the full ``step_size``: the
    camera keeps magnifying the picture, so fine detail must be grown anew at every frame (the video
    chain's ``warm_step_scale`` is not applied: at 0.35 a dive goes soft, 2.3x less edge energy).
    """
    frame = frame_settings(settings, values)  # this frame's settings, overrides validated
    d, v, z = frame.dream, frame.video, settings.zoom
    h, w = start.shape[:2]
    if prev is None:
        seed_img = np.asarray(start, dtype=np.float32)
    else:
        if step is None:
            step = step_transform(z.fps, (w, h), z, values)
        seed_img = transform(prev, step)
    # The warm-frame rule, at the full step_size (see above).
    params = dream_params(frame, warm=prev is not None, step_scale=1.0)
    out = engine.dream(seed_img, params, seed=seed_for_frame(d.seed, index))
    if v.color_match:
        out = match_color(out, start)
    if controls is not None:
        out = controls.apply(out, seed_img, index)
    return to_uint8(out)


def camera_only(settings: Settings, timeline: Any = None) -> bool:
    """True when nothing is dreamed (steps or step_size 0, not scheduled): frames are then the start
    image moved by the accumulated camera directly, one resampling each, exact and crisp at any fps."""
    d = settings.dream
    driven = set(getattr(timeline, "names", ()) or ()) if timeline is not None else set()
    return (d.steps == 0 or d.step_size == 0) and not driven & {"steps", "step_size"}


def loop_mix(tail: np.ndarray, head: np.ndarray, k: int, fade: int) -> np.ndarray:
    """Output frame k < fade of a loop: (1 - k/fade) * F_{N+k} + (k/fade) * F_k, uint8.

    Mixing two unrelated pictures lowers their contrast (a dip mid-fade); the mix's per-channel
    mean/std are set back to the same blend of the two frames' own statistics.
    """
    wgt = k / fade
    if wgt == 0:
        return tail
    a, b = tail.astype(np.float32), head.astype(np.float32)
    mix = (1.0 - wgt) * a + wgt * b
    (ma, sa), (mb, sb) = channel_stats(a), channel_stats(b)
    mm, sm = channel_stats(mix)
    target_m, target_s = (1 - wgt) * ma + wgt * mb, (1 - wgt) * sa + wgt * sb
    mix = (mix - mm) * (target_s / (sm + 1e-6)) + target_m
    return to_uint8(mix)


class _Steps:
    """Frame-to-frame change of the written frames, the loop seam and colour drift (0..255 units)."""

    def __init__(self) -> None:
        self.first: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.steps: list[float] = []

    def add(self, frame: np.ndarray) -> None:
        f = frame.astype(np.float32)
        if self.first is None:
            self.first = f
        if self.prev is not None:
            self.steps.append(float(np.abs(f - self.prev).mean()))
        self.prev = f

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.first is None or self.prev is None:
            return out
        if self.steps:
            out["median_step"] = round(float(np.median(self.steps)), 3)
            out["max_step"] = round(float(np.max(self.steps)), 3)
        out["seam"] = round(float(np.abs(self.prev - self.first).mean()), 3)  # last -> first, for loops
        (m0, s0), (m1, s1) = channel_stats(self.first), channel_stats(self.prev)
        out["mean_drift"] = round(float(np.abs(m1 - m0).mean()), 3)  # |mean(last) - mean(first)|, per channel
        out["std_drift"] = round(float(np.abs(s1 - s0).mean()), 3)
        return out


# --- the render ----------------------------------------------------------------------------------


def render_zoom(
    input: str | Path | None,
    output: str | Path | OutputTarget,
    settings: Settings,
    *,
    command: str | None = None,
    on_progress: ProgressFn = noop,
    on_note: NoteFn = noop,
    resume: bool = True,
    soundtrack: str | Path | None = None,
    record: Mapping[str, Any] | None = None,
) -> RenderResult:
    """Render an infinite zoom from an image (``input``) or, with ``settings.zoom.noise``, from noise.

    Length ``round(seconds * fps)`` frames at the exact fps; ``soundtrack`` = a file whose sound is
    muxed in (unless the ``audio`` setting is off), cut to the animation, and which drives audio
    reactions. Finished frames are kept in a work folder beside the output, so the same call after
    an interruption continues the chain from the last saved frame; the output appears under its
    final name only when complete, with a settings JSON beside it (plus ``record``'s extra keys).

    Args:
        input: the start image, or None to start from noise (``settings.zoom.noise``; exactly one of the two).
        output: a video file (by extension), "name/" for PNG frames, or an OutputTarget.
        settings: the look and ``settings.zoom`` (seconds > 0, fps, zoom_per_second, rotate_per_second, loop, noise,
            size in pixels, ...).
        command: the command line to record in the settings JSON; None = none recorded.
        on_progress: called after each frame as ``on_progress(done, total_or_None)``.
        on_note: called with each one-line notice (``on_note(message)``).
        resume: True continues from the saved frames of an interrupted run with the same inputs and
            settings; False starts again.
        soundtrack: an audio file (or a video with sound) to mux in and to drive ``react``; None = silent.
        record: extra keys for the settings JSON; None = none.

    Returns:
        RenderResult: the output path, the encoded width and height in pixels, the frame count, the
        model, the wall time in seconds, the settings JSON's path, the frames reused and the notices.

    Raises:
        ConfigError: neither or both of ``input`` and noise, a reaction without a sound track, an invalid
            setting, schedule or reaction, or a frame too large for the model.
        InputError: the input image or sound track is missing or unreadable, or the sound track has no sound.
        OutputError: the output cannot be written; DiskFullError when the disk runs out; BusyError when
            another render holds the same output; OutputKindError for an image output.
        ModelError: the model or a layer is unknown, or its weights cannot be had.
        MediaError: ffmpeg failed on a file that looked valid.
    """
    from .controls import Controls
    from .dream import get_engine
    from .encode import encoded_size
    from .model import check_frame_size, planned_spec
    from .probe import check_input_file, probe
    from .resume import input_identity, with_controls

    z = settings.zoom
    input = Path(input) if input is not None else None
    soundtrack = Path(soundtrack) if soundtrack is not None else None
    if input is None and not z.noise:
        raise ConfigError("zoom needs a start: give an INPUT image, or --noise to start from noise")
    if input is not None and z.noise:
        raise ConfigError("zoom starts from an INPUT image or from --noise, not both: drop one of them")
    if input is not None:
        check_input_file(input, "image")
    target = output_target(output, [input, soundtrack], allowed=VIDEO_KINDS, crf=settings.encode.crf)
    if soundtrack is not None:
        check_input_file(soundtrack, "audio")
        if not probe(soundtrack).has_audio:
            raise InputError(f"{str(soundtrack)!r} has no sound to add: give a sound track with an audio stream")

    if settings.schedule or settings.react:  # fail on a bad spec before any work folder exists
        from .schedule import parse_all

        parse_all(settings.schedule, settings.react, RULES)
        if settings.react and soundtrack is None:
            raise ConfigError("--react needs a sound track: give zoom a sound track file (--soundtrack FILE)")

    run = RunContext(target, settings, command=command, on_note=on_note, record=record)
    start = start_image(input, settings)
    h, w = start.shape[:2]
    check_frame_size(planned_spec(settings.dream.model, settings.dream.weights), (w, h))  # before the model loads
    if input is None and z.size is None:
        run.note(f"--noise without --size: rendering {w}x{h}")
    fps = Fraction(z.fps)
    n = frame_count(z.seconds, fps)
    fade = loop_frame_count(z, n) if z.loop else 0
    if z.loop and fade < frame_count(z.loop_seconds, fps):
        run.note(f"the loop fade is cut to {fade} frames: the animation has only {n}")
    total = n + fade

    engine = get_engine(settings.dream)
    controls = Controls.open(settings)  # keep_colors, a still mask: checked before any frame
    for msg in engine.loaded.notes:
        run.note(msg)

    # Everything that shapes the frames: settings (digest), the image, sound that drives reactions, and
    # the guide and mask files (with_controls).
    source: dict[str, Any] = {"input": input_identity(input)}
    if settings.react and soundtrack is not None:
        source["audio"] = input_identity(soundtrack)
    done = run.open_work(with_controls(source, settings), resume, limit=total, plan=(total, (w, h)))
    work = run.work
    assert work is not None
    audio_from = soundtrack if (soundtrack is not None and settings.encode.audio) else None
    steps = _Steps()
    with (
        work.discard_if_empty(),
        open_output(
            target, fps, (w, h), settings, audio_from=audio_from, audio_start=0.0, audio_duration=float(n / fps)
        ) as writer,
    ):
        timeline = build_timeline(
            settings, soundtrack, fps, total, 0.0, float(Fraction(total) / fps), cache=work.root / "features.npz"
        )

        def emit(frame: np.ndarray) -> None:
            writer.write(frame)
            steps.add(frame)

        still = camera_only(settings, timeline)
        prev: np.ndarray | None = None
        camera = np.eye(3)  # frame 0 -> this frame, the product of the per-frame steps
        for index in range(total):
            values = timeline.values(index) if timeline is not None else None
            step = step_transform(fps, (w, h), z, values) if index > 0 else None
            if step is not None:
                camera = np.vstack([step, [0.0, 0.0, 1.0]]) @ camera
            if index < done:
                # Finished before the interruption: re-encode it (no loop), or keep it as the chain's last.
                if (not z.loop and index < n) or index == done - 1:
                    out8 = work.load_frame(index)
                else:
                    on_progress(index + 1, total)
                    continue
            else:
                if still:
                    out8 = to_uint8(transform(start, camera[:2]))
                else:
                    out8 = dream_frame(engine, settings, index, prev, start, values, step, controls)
                work.save_frame(index, out8)
            prev = out8
            if not z.loop:
                emit(out8)
            on_progress(index + 1, total)
        if z.loop:
            # O_k = mix(F_{n+k}, F_k) for k < fade, then F_k: the wrap O_{n-1} -> O_0 = F_{n-1} -> F_n.
            for k in range(n):
                frame = work.load_frame(k)
                if k < fade:
                    frame = loop_mix(work.load_frame(n + k), frame, k, fade)
                emit(frame)

    seconds = run.seconds()
    w, h = encoded_size(target.path, (w, h), kind=target.kind)  # the size the file has (H.264/VP9 pad odd sides)
    summary = steps.summary()
    if not z.loop:
        summary.pop("seam", None)
    path = run.finish(
        {
            "input": str(input) if input is not None else None,
            "input_identity": source["input"],
            "noise": bool(z.noise),
            "model": engine.name,
            "layers": list(engine.layers),
            "weights": engine.loaded.source.detail,
            "fps": f"{fps.numerator}/{fps.denominator}",
            "frames": n,
            "size": [w, h],
            "audio": str(audio_from) if audio_from is not None else None,
            "soundtrack": str(soundtrack) if soundtrack is not None else None,
            "loop": {
                "method": "tail-into-head cross-fade of an N+L chain",
                "fade_frames": fade,
                "rendered_frames": total,
            }
            if z.loop
            else None,
            "zoom_per_frame": z.zoom_per_second ** float(1 / fps),
            "resumed_frames": done,
            "seconds": round(seconds, 3),
            "seconds_per_frame": round(seconds / max(total - done, 1), 4),
            "metrics": summary,
            "timeline": timeline.describe() if timeline is not None else [],
        }
    )
    return RenderResult(target.path, w, h, n, engine.name, seconds, path, done, summary, run.notes)


__all__ = [
    "camera_matrix",
    "step_transform",
    "transform",
    "frame_count",
    "loop_frame_count",
    "noise_image",
    "fit_to_size",
    "start_image",
    "dream_frame",
    "camera_only",
    "loop_mix",
    "render_zoom",
]
