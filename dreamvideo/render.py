"""The orchestrator: decode -> flow and warp -> dream -> encode, for images and videos.

The library never prints: it reports progress through ``on_progress(done, total_estimate)`` and
notices through ``on_note(message)``; the CLI draws them. Frames are HxWx3 uint8 at the file
edges and float32 0..255 inside.

Temporal coherence, for each video frame t after the first (all on INPUT-frame flow):
  1. backward flow t -> t-1 and an occlusion mask from the forward-backward check (flow.py);
  2. the previous dream's detail (dream minus raw), or the whole dreamed frame, warped onto t;
  3. where the mask says the flow is unreliable, the raw frame is used instead;
  4. blended with the raw frame, then dreamed with ``warm_steps`` over ``warm_octaves``;
  5. a frame the flow cannot explain (scene cut) restarts the chain from the raw frame;
  6. colour statistics held to the source frame's, and the carried detail decays, so long clips
     neither snowball, darken nor brighten.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .errors import InputError
from .files import write_atomic
from .toolkit import (
    IMAGE_KINDS,
    VIDEO_KINDS,
    NoteFn,
    OutputTarget,
    ProgressFn,
    RenderResult,
    RunContext,
    build_timeline,
    dream_params,
    frame_settings,
    match_color,
    noop,
    output_target,
    seed_for_frame,
    settings_path,
    to_uint8,
)

# Names kept importable from here for callers written before the toolkit existed.
__all__ = ["RenderResult", "VideoChain", "Metrics", "RangeResult", "dream_image", "estimate_frames", "render_image",
           "render_range", "render_video", "settings_path", "seed_for_frame", "match_color"]


# --- image ---------------------------------------------------------------------------------------


def dream_image(image: np.ndarray, settings: Settings | None = None, seed: int | None = None) -> np.ndarray:
    """Dream an HxWx3 RGB image (uint8 or float 0..255) with ``settings``; returns uint8 HxWx3."""
    from .dream import get_engine

    settings = settings or Settings()
    engine = get_engine(settings.dream)
    out = engine.dream(np.asarray(image, dtype=np.float32), dream_params(settings, warm=False),
                       seed=settings.dream.seed if seed is None else seed)
    return to_uint8(out)


def render_image(
    input: str | Path,
    output: str | Path | OutputTarget,
    settings: Settings,
    *,
    command: str | None = None,
    on_note: NoteFn = noop,
    record: Mapping[str, Any] | None = None,
) -> RenderResult:
    """Dream an image file into another (PNG/JPEG/WebP by extension), with a settings JSON beside it.

    ``record``: extra keys for the settings JSON (a batch adds its manifest and job).
    """
    from .decode import read_image, resize_max_side
    from .dream import get_engine
    from .encode import write_image

    input = Path(input)
    target = output_target(output, [input], allowed=IMAGE_KINDS)
    run = RunContext(target, settings, command=command, on_note=on_note, record=record)
    rgb = resize_max_side(read_image(input), settings.dream.max_side)
    engine = get_engine(settings.dream)
    for n in engine.loaded.notes:
        run.note(n)
    out = dream_image(rgb, settings)
    write_image(target.path, out)
    seconds = run.seconds()
    path = run.finish({"input": str(input), "model": engine.name, "layers": list(engine.layers),
                       "weights": engine.loaded.source.detail, "seconds": round(seconds, 3),
                       "size": [out.shape[1], out.shape[0]]})
    return RenderResult(target.path, out.shape[1], out.shape[0], 1, engine.name, seconds, path, notes=run.notes)


# --- video ---------------------------------------------------------------------------------------


class VideoChain:
    """The coherent chain, free of I/O: raw frames (and their flow) in, dreamed frames out.

    ``step`` keeps the previous raw and dreamed frames. The dreamed frame carried forward is the
    uint8 one, exactly what was saved, so a resumed run continues bit for bit.
    """

    def __init__(self, engine: Any, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.prev_raw: np.ndarray | None = None  # HxWx3 uint8, frame t-1 of the input
        self.prev_out: np.ndarray | None = None  # HxWx3 uint8, frame t-1 of the output

    def restore(self, prev_raw: np.ndarray, prev_out: np.ndarray) -> None:
        """Continue after frame t-1 (a resume)."""
        self.prev_raw, self.prev_out = prev_raw, prev_out

    def step(self, index: int, raw: np.ndarray, coh: tuple | None, values: dict[str, float] | None = None) -> tuple[np.ndarray, dict]:
        """Dream frame ``index``. ``coh`` = (flow_bw, mask, unexplained) for t-1 -> t, None for a first frame.

        ``values`` are per-frame overrides of flat settings (schedules, audio reactions).
        Returns (dreamed uint8 frame, info with 'cut' and 'seeded').
        """
        from .flow import is_scene_cut, warp

        frame = frame_settings(self.settings, values)  # this frame's settings, overrides validated
        d, v = frame.dream, frame.video
        blend, decay = float(v.blend), float(v.detail_decay)
        rawf = raw.astype(np.float32)
        cut = coh is not None and is_scene_cut(coh[2], v.scene_cut)
        seeded = v.coherent and coh is not None and not cut and self.prev_out is not None
        if seeded:
            flow_bw, mask, _ = coh
            m = mask[..., None]
            if v.warp == "detail":
                detail = self.prev_out.astype(np.float32) - self.prev_raw.astype(np.float32)
                seed_img = rawf + (1.0 - blend) * decay * m * warp(detail, flow_bw)
            else:
                warped = warp(self.prev_out.astype(np.float32), flow_bw)
                seed_img = m * ((1.0 - blend) * warped + blend * rawf) + (1.0 - m) * rawf
            seed_img = np.clip(seed_img, 0.0, 255.0)
        else:
            seed_img = rawf
        params = dream_params(frame, warm=seeded)  # the warm-frame rule
        out = self.engine.dream(seed_img, params, seed=seed_for_frame(d.seed, index))
        if v.color_match:
            out = match_color(out, rawf)
        out8 = to_uint8(out)
        self.prev_raw, self.prev_out = raw, out8
        return out8, {"cut": bool(cut), "seeded": seeded}


class Metrics:
    """Flicker, strength and drift, accumulated frame by frame (cheap: one remap per frame)."""

    def __init__(self) -> None:
        self.flicker_out: list[float] = []  # masked mean |out_t - warp(out_t-1)|
        self.flicker_in: list[float] = []  # the same on the input
        self.strength: list[float] = []  # mean |out - in|, 0..255
        self.offset: list[float] = []  # mean(out) - mean(in): brightness drift, 0..255

    def add(self, raw: np.ndarray, out: np.ndarray, prev_raw: np.ndarray | None, prev_out: np.ndarray | None,
            coh: tuple | None, cut: bool) -> None:
        from .flow import warp

        r, o = raw.astype(np.float32), out.astype(np.float32)
        self.strength.append(float(np.abs(o - r).mean()))
        self.offset.append(float(o.mean() - r.mean()))
        if coh is not None and prev_out is not None and prev_raw is not None and not cut:
            flow_bw, mask, _ = coh
            m = mask[..., None]
            wsum = float(m.sum()) * 3 + 1e-6
            self.flicker_out.append(float((np.abs(o - warp(prev_out.astype(np.float32), flow_bw)) * m).sum() / wsum))
            self.flicker_in.append(float((np.abs(r - warp(prev_raw.astype(np.float32), flow_bw)) * m).sum() / wsum))

    def summary(self) -> dict[str, float]:
        """flicker: output's warped frame-to-frame change over the input's (1 = as steady as the source);
        strength: mean |out - in| (0..255); drift: brightness offset change per 100 frames (0..255)."""
        out: dict[str, float] = {}
        if self.flicker_in and sum(self.flicker_in) > 0:
            out["flicker"] = round(float(np.mean(self.flicker_out) / max(np.mean(self.flicker_in), 1e-6)), 4)
        if self.strength:
            out["strength"] = round(float(np.mean(self.strength)), 3)
        if len(self.offset) >= 2:
            slope = np.polyfit(np.arange(len(self.offset)), np.array(self.offset), 1)[0]
            out["drift_per_100_frames"] = round(float(slope * 100), 3)
        return out


def _producer(frames: Iterator[np.ndarray], flow_method: str, need_flow_from: int,
              out_q: "queue.Queue", stop: threading.Event) -> None:
    """Background thread: decode and compute flow ahead of the dream (OpenCV releases the GIL).

    Flow is computed from frame ``need_flow_from`` on (earlier frames are finished ones being
    re-encoded), also for independent dreams, whose flicker is measured along the same flow.
    Every put gives up once ``stop`` is set, so a failed render never leaves this thread blocked
    on a full queue with the input still open (a batch runs many renders in one process).
    """
    from .flow import FlowEstimator, coherence

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out_q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        est = FlowEstimator(flow_method)
        prev = None
        for index, raw in enumerate(frames):
            coh = None
            if prev is not None and index >= need_flow_from:
                coh = coherence(raw, prev, est)
            prev = raw
            if not put((index, raw, coh)):
                return
        put(None)
    except BaseException as err:  # handed to the main thread, which raises it there
        put(err)


def estimate_frames(info: Any, settings: Settings) -> int | None:
    """Frames a render will have, from the header (may lie) and start/duration/max_frames."""
    v = settings.video
    total = None
    if info.fps and info.duration:
        span = info.duration - v.start
        if v.duration is not None:
            span = min(span, v.duration)
        total = max(int(float(span) * float(info.fps) + 0.5), 0)
    elif info.frame_count:
        total = info.frame_count
    if v.max_frames is not None:
        total = v.max_frames if total is None else min(total, v.max_frames)
    return total


def render_video(
    input: str | Path,
    output: str | Path | OutputTarget,
    settings: Settings,
    *,
    command: str | None = None,
    on_progress: ProgressFn = noop,
    on_note: NoteFn = noop,
    resume: bool = True,
    record: Mapping[str, Any] | None = None,
) -> RenderResult:
    """Dream a video file into another, coherent in time, at the source's exact frame rate, with its audio.

    Finished frames are kept in a work folder beside the output; running the same call again after
    an interruption continues where it stopped. The output appears under its final name only
    when complete. ``output``: a path ("name/" as text for PNG frames) or an OutputTarget;
    ``record``: extra keys for the settings JSON (a batch adds its manifest and job).
    """
    from .decode import iter_frames
    from .dream import get_engine
    from .encode import open_writer
    from .probe import probe, require_video
    from .resume import input_identity

    input = Path(input)
    info = require_video(probe(input))
    target = output_target(output, [input], allowed=VIDEO_KINDS, crf=settings.encode.crf)
    run = RunContext(target, settings, command=command, on_note=on_note, record=record)
    fps: Fraction = info.fps
    v = settings.video
    engine = get_engine(settings.dream)
    for n in engine.loaded.notes:
        run.note(n)
    estimate = estimate_frames(info, settings)
    done = run.open_work(input_identity(input), resume)
    work = run.work
    assert work is not None
    frames = iter_frames(input, max_side=settings.dream.max_side, start=v.start, duration=v.duration,
                         max_frames=v.max_frames)
    chain = VideoChain(engine, settings)
    metrics = Metrics()
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    producer = threading.Thread(target=_producer, args=(frames, v.flow, done, q, stop), daemon=True)
    producer.start()
    writer = None
    count = 0
    size: tuple[int, int] | None = None
    audio_from = input if (settings.encode.audio and info.has_audio) else None
    try:
        # The writer opens at the first frame (its size is known then) and, as a context, finishes
        # the file on success or aborts it (nothing under the final name) on any exception.
        with contextlib.ExitStack() as stack:
            stack.enter_context(work.discard_if_empty())  # unwound last: after the writer aborts
            timeline = build_timeline(settings, input if info.has_audio else None, fps, estimate, v.start,
                                      v.duration, cache=work.root / "features.npz")
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                index, raw, coh = item
                if writer is None:
                    size = (raw.shape[1], raw.shape[0])
                    writer = stack.enter_context(open_writer(
                        target.path, fps, size, crf=settings.encode.crf,
                        encoder_preset=settings.encode.encoder_preset, audio_from=audio_from,
                        audio_start=v.start, audio_duration=v.duration, kind=target.kind))
                if index < done:
                    out8 = work.load_frame(index)  # finished before the interruption: re-encode it
                    if index == done - 1:
                        chain.restore(raw, out8)
                else:
                    prev_raw, prev_out = chain.prev_raw, chain.prev_out
                    values = timeline.values(index) if timeline is not None else None
                    out8, step_info = chain.step(index, raw, coh, values)
                    metrics.add(raw, out8, prev_raw, prev_out, coh, step_info["cut"])
                    work.save_frame(index, out8)
                writer.write(out8)
                count += 1
                on_progress(count, max(estimate or 0, count) if estimate else None)
            if writer is None:
                raise InputError(f"{input}: no frame could be decoded: check the file plays, and --start/--duration")
    finally:
        stop.set()
    if estimate and count < estimate * 0.9:
        run.note(f"decoded {count} frames where the header promised about {estimate}: the file may be truncated")
    seconds = run.seconds()
    summary = metrics.summary()
    assert size is not None
    path = run.finish({
        "input": str(input), "model": engine.name, "layers": list(engine.layers),
        "weights": engine.loaded.source.detail, "fps": f"{fps.numerator}/{fps.denominator}", "frames": count,
        "size": list(size), "audio": bool(audio_from), "resumed_frames": done, "seconds": round(seconds, 3),
        "seconds_per_frame": round(seconds / max(count - done, 1), 4), "metrics": summary,
        "per_frame_strength": [round(x, 3) for x in metrics.strength],  # frames rendered in this run
        "timeline": timeline.describe() if timeline is not None else [],
    })
    return RenderResult(target.path, size[0], size[1], count, engine.name, seconds, path, done, summary, run.notes)


# --- one range of a video (a segment of a split render) --------------------------------------------


@dataclass
class RangeResult:
    """What render_range stored: frames ``start .. start + frames - 1`` of the render, in ``work``."""

    work: Path  # the work folder holding the frames (resume.WorkDir layout)
    start: int  # the render's frame index (0 = the frame at settings.video.start) of the first stored frame
    frames: int  # frames stored, from ``start`` on (fewer than asked when the source ended first)
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    fps: str  # the source's exact frame rate, "num/den"
    model: str  # the model that dreamed
    seconds: float  # wall time of this call (0 when the range was already complete)
    resumed_frames: int = 0  # frames found finished in the work folder and not dreamed again
    # Per stored frame (index - start), the Metrics inputs: [strength, offset, flicker_out, flicker_in]
    # (flicker entries None for a chain start). 0..255 scales.
    per_frame: list[list[float | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # notices reported

    def frame_path(self, index: int) -> Path:
        """The stored PNG of the render's frame ``index`` (start <= index < start + frames)."""
        from .resume import WorkDir

        return WorkDir(self.work, "", None, root=self.work).frame_path(index - self.start)


def render_range(
    input: str | Path,
    work: str | Path,
    settings: Settings,
    *,
    start: int,
    stop: int | None,
    tag: str = "",
    on_progress: ProgressFn = noop,
    on_note: NoteFn = noop,
    resume: bool = True,
) -> RangeResult:
    """Dream the render's frames ``start .. stop - 1`` (``stop`` None = to the end of the source) as one
    chain that begins fresh at ``start``, and keep them as lossless frames in the folder ``work``.

    Frame indices count from the frame at ``settings.video.start``, exactly as render_video numbers
    them: seeds, schedules and audio reactions are those of the whole render. Frames before
    ``start`` are decoded and skipped (exact, whatever the file's timestamps). Resumable: a second
    call continues after the last stored frame; a complete range returns at once. ``tag`` is mixed
    into the work folder's digest (a segment's plan), so another plan never reuses these frames.
    """
    from .decode import iter_frames
    from .dream import get_engine
    from .probe import probe, require_video
    from .resume import WorkDir, input_identity

    t0 = time.perf_counter()
    input, work = Path(input), Path(work)
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError(f"frame range [{start}, {stop}) is empty or negative")
    info = require_video(probe(input))
    fps: Fraction = info.fps
    v = settings.video
    engine = get_engine(settings.dream)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        on_note(msg)

    estimate = estimate_frames(info, settings)
    digest = f"{settings.digest()}/{tag}/{start}:{stop}"
    store = WorkDir(work, digest, input_identity(input), root=work)
    done = store.open(resume)
    complete = work / "range.json"
    if done and complete.is_file():
        try:
            doc = json.loads(complete.read_text())
            if doc.get("digest") == digest and int(doc.get("frames", -1)) == done:
                doc.pop("digest")
                return RangeResult(work=work, **{**doc, "seconds": 0.0, "resumed_frames": done})
        except (OSError, ValueError, TypeError):
            pass  # unreadable marker: finish the range again from its stored frames
    if store.restarted_reason and "--no-resume" not in store.restarted_reason:
        note(f"{tag or 'range'}: {store.restarted_reason}")
    planned = (stop if stop is not None else max(estimate or 0, start + 1)) - start
    if v.max_frames is not None:
        stop = v.max_frames if stop is None else min(stop, v.max_frames)
    frames = iter_frames(input, max_side=settings.dream.max_side, start=v.start, duration=v.duration,
                         max_frames=stop)
    ranged = itertools.islice(frames, start, None)  # decoded and dropped: exact even with uneven timestamps
    chain = VideoChain(engine, settings)
    metrics = Metrics()
    q: queue.Queue = queue.Queue(maxsize=4)
    halt = threading.Event()
    producer = threading.Thread(target=_producer, args=(ranged, v.flow, max(done, 1), q, halt), daemon=True)
    producer.start()
    per_frame: list[list[float | None]] = []
    count = 0
    size: tuple[int, int] | None = None
    try:
        with store.discard_if_empty():
            timeline = build_timeline(settings, input if info.has_audio else None, fps, estimate, v.start,
                                      v.duration, cache=work / "features.npz")
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                local, raw, coh = item
                size = (raw.shape[1], raw.shape[0])
                index = start + local
                if local < done:
                    out8 = store.load_frame(local)
                    if local == done - 1:
                        chain.restore(raw, out8)
                    per_frame.append([None, None, None, None])  # refilled from the marker below, if any
                else:
                    prev_raw, prev_out = chain.prev_raw, chain.prev_out
                    values = timeline.values(index) if timeline is not None else None
                    out8, step_info = chain.step(index, raw, coh, values)
                    n_flicker = len(metrics.flicker_out)
                    metrics.add(raw, out8, prev_raw, prev_out, coh, step_info["cut"])
                    seen = len(metrics.flicker_out) > n_flicker
                    per_frame.append([metrics.strength[-1], metrics.offset[-1],
                                      metrics.flicker_out[-1] if seen else None,
                                      metrics.flicker_in[-1] if seen else None])
                    store.save_frame(local, out8)
                count += 1
                on_progress(count, max(planned, count))
            if size is None:
                raise InputError(f"{input}: no frame decoded from frame {start} on: check the file plays, "
                                 "and --start/--duration")
    finally:
        halt.set()
    result = RangeResult(work=work, start=start, frames=count, width=size[0], height=size[1],
                         fps=f"{fps.numerator}/{fps.denominator}", model=engine.name,
                         seconds=time.perf_counter() - t0, resumed_frames=done, per_frame=per_frame, notes=notes)
    doc = {"digest": digest, "start": start, "frames": count, "width": size[0], "height": size[1], "fps": result.fps,
           "model": engine.name, "per_frame": per_frame, "notes": notes}
    write_atomic(complete, json.dumps(doc))
    return result
