"""The orchestrator: decode -> flow and warp -> dream -> encode, for images and videos.

The library never prints: it reports progress through ``on_progress(done, total_estimate)`` and
notices through ``on_note(message)``; the CLI draws them. Frames are HxWx3 uint8 at the file
edges and float32 0..255 inside.

Temporal coherence lives in chain.py (VideoChain: flow-warped dream, the temporal term, scene
cuts) and its measurement in metrics.py (flicker, strength hold, drift, the report figure).
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
from .resume import input_identity, with_controls
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
    match_color,
    noop,
    open_output,
    output_target,
    report_path,
    seed_for_frame,
    settings_path,
    to_uint8,
)

# Names kept importable from here for callers written before the toolkit existed.
__all__ = [
    "RangeResult",
    "RenderResult",
    "dream_image",
    "estimate_frames",
    "render_image",
    "render_range",
    "render_video",
    "settings_path",
    "report_path",
    "seed_for_frame",
    "match_color",
]


# --- image ---------------------------------------------------------------------------------------


def dream_image(image: np.ndarray, settings: Settings | None = None, seed: int | None = None) -> np.ndarray:
    """Dream an HxWx3 RGB image (uint8 or float 0..255) with ``settings``; returns uint8 HxWx3.

    Args:
        image: an HxWx3 RGB array, uint8 or float with values 0..255 (not resized here: ``max_side``
            applies to files, see ``render_image``).
        settings: the look (model, layers, strength, keep_colors, mask, ...); None = the built-in defaults.
        seed: the random seed of this dream; None = ``settings.dream.seed``.

    Returns:
        The dreamed image, an HxWx3 uint8 RGB array of the input's size.

    Raises:
        ModelError: the model or a layer is unknown, or its weights cannot be had.
        ConfigError: a setting is invalid (e.g. a mask that does not fit).
        InputError: a control file (a mask) is missing or unreadable.
    """
    from .controls import Controls
    from .dream import get_engine

    settings = settings or Settings()
    engine = get_engine(settings.dream)
    controls = Controls.open(settings)  # keep_colors, mask: read and checked before the dream
    out = engine.dream(
        np.asarray(image, dtype=np.float32),
        dream_params(settings, warm=False),
        seed=settings.dream.seed if seed is None else seed,
    )
    if controls is not None:
        out = controls.apply(out, np.asarray(image, dtype=np.float32))
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

    Args:
        input: the image file to dream.
        output: the image to write (.png, .jpg/.jpeg or .webp), or an OutputTarget.
        settings: the look; ``settings.dream.max_side`` caps the longer side (pixels) before the dream.
        command: the command line to record in the settings JSON; None = none recorded.
        on_note: called with each one-line notice (``on_note(message)``), e.g. a model fallback.
        record: extra keys for the settings JSON; None = none.

    Returns:
        RenderResult: the output path, its width and height in pixels, ``frames`` = 1, the model, the
        wall time in seconds, the settings JSON's path and the notices.

    Raises:
        InputError: the input is missing, empty or not a readable image.
        OutputError: the output cannot be written (folder missing or read-only, same as the input);
            DiskFullError when the disk runs out; OutputKindError for a video output.
        ConfigError: a setting is invalid, or the frame is too large for the model.
        ModelError: the model or a layer is unknown, or its weights cannot be had.
    """
    from .decode import read_image, resize_max_side
    from .dream import get_engine
    from .encode import write_image
    from .model import check_frame_size, planned_spec

    input = Path(input)
    target = output_target(output, [input], allowed=IMAGE_KINDS)
    run = RunContext(target, settings, command=command, on_note=on_note, record=record)
    original = read_image(input)
    rgb = resize_max_side(original, settings.dream.max_side)
    check_frame_size(
        planned_spec(settings.dream.model, settings.dream.weights),
        (rgb.shape[1], rgb.shape[0]),
        (original.shape[1], original.shape[0]),
    )  # before the model loads
    engine = get_engine(settings.dream)
    for n in engine.loaded.notes:
        run.note(n)
    out = dream_image(rgb, settings)
    write_image(target.path, out)
    seconds = run.seconds()
    path = run.finish(
        {
            "input": str(input),
            "input_identity": input_identity(input),
            "model": engine.name,
            "layers": list(engine.layers),
            "weights": engine.loaded.source.detail,
            "seconds": round(seconds, 3),
            "size": [out.shape[1], out.shape[0]],
        }
    )
    return RenderResult(target.path, out.shape[1], out.shape[0], 1, engine.name, seconds, path, notes=run.notes)


# --- video ---------------------------------------------------------------------------------------


def _producer(
    frames: Iterator[np.ndarray], flow_method: str, need_flow_from: int, out_q: queue.Queue, stop: threading.Event
) -> None:
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
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # release the capture in this thread, before render_video's join returns


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
    report: bool = False,
) -> RenderResult:
    """Dream a video file into another, coherent in time, at the source's exact frame rate, with its audio.

    Finished frames are kept in a work folder beside the output; running the same call again after
    an interruption continues where it stopped. The output appears under its final name only
    when complete. ``output``: a path ("name/" as text for PNG frames) or an OutputTarget;
    ``record``: extra keys for the settings JSON (a batch adds its manifest and job). ``report``
    also dreams 3 frames of the second half from scratch (the settled strength ratio) and writes
    ``report_path(output)``: input and output side by side above a per-frame plot of strength and
    flicker (metrics.py).

    Args:
        input: the video file to dream (it must have more than one frame).
        output: a video file (.mp4, .mkv, .mov, .webm, ... by extension), "name/" for PNG frames, or an
            OutputTarget.
        settings: the look and the video options (start/duration in seconds, max_frames, flow,
            coherent, crf, audio, ...).
        command: the command line to record in the settings JSON; None = none recorded.
        on_progress: called after each frame as ``on_progress(done, total_or_None)``: frames written so
            far and the expected total (None when the header gives none; it may grow).
        on_note: called with each one-line notice (``on_note(message)``).
        resume: True continues from the finished frames of an interrupted run with the same input and
            settings; False starts again from the first frame.
        record: extra keys for the settings JSON; None = none.
        report: True also writes the report figure (PNG) beside the output.

    Returns:
        RenderResult: the output path, the encoded width and height in pixels, the frame count, the
        model, the wall time in seconds, the settings JSON's path, the frames reused from an interrupted
        run, the metrics (flicker, strength, drift), the notices and warnings (a damaged input).

    Raises:
        InputError: the input is missing, not a video, a still image, or no frame can be decoded.
        OutputError: the output cannot be written; DiskFullError when the disk runs out; BusyError when
            another render holds the same output; OutputKindError for an image output.
        ConfigError: a setting, schedule or reaction is invalid, or the frame is too large for the model.
        ModelError: the model or a layer is unknown, or its weights cannot be had.
        MediaError: ffmpeg or OpenCV failed on a file that looked valid.
    """
    from .chain import VideoChain
    from .controls import Controls
    from .decode import DecodeStats, iter_frames, scaled_size
    from .dream import get_engine
    from .encode import encoded_size, write_image
    from .metrics import Metrics, report_figure, scratch_indices
    from .model import check_frame_size, planned_spec
    from .probe import probe, require_moving_video

    input = Path(input)
    info = require_moving_video(probe(input))
    target = output_target(output, [input], allowed=VIDEO_KINDS, crf=settings.encode.crf)
    if info.width and info.height:  # before the model loads or any frame renders
        check_frame_size(
            planned_spec(settings.dream.model, settings.dream.weights),
            scaled_size(info.width, info.height, settings.dream.max_side),
            (info.width, info.height),
        )
    run = RunContext(target, settings, command=command, on_note=on_note, record=record)
    fps: Fraction = info.fps
    v = settings.video
    engine = get_engine(settings.dream)
    controls = Controls.open(settings, clip=input)  # a bad mask fails here, before any frame
    for n in engine.loaded.notes:
        run.note(n)
    estimate = estimate_frames(info, settings)
    # Open the input before the work folder, so an input OpenCV cannot read leaves no folder behind.
    decode_stats = DecodeStats()
    frames = iter_frames(
        input,
        max_side=settings.dream.max_side,
        start=v.start,
        duration=v.duration,
        max_frames=v.max_frames,
        stats=decode_stats,
    )
    identity = input_identity(input)  # by content: batch compares it to skip a job only for the same input
    try:  # takes the output's lock: BusyError if another render holds it
        done = run.open_work(
            with_controls(identity, settings),
            resume,
            plan=(estimate, scaled_size(info.width, info.height, settings.dream.max_side)),
        )
    except BaseException:
        frames.close()  # type: ignore[attr-defined]
        raise
    work = run.work
    assert work is not None
    chain = VideoChain(engine, settings, controls)
    metrics = Metrics(keep_thumbs=report)
    # From-scratch dreams of a few settled frames (same seeds and settings as --independent).
    scratch_at = set(scratch_indices(estimate)) if report and estimate else set()
    scratch_chain = VideoChain(engine, settings.replace(coherent=False), controls) if scratch_at else None
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
            timeline = build_timeline(
                settings,
                input if info.has_audio else None,
                fps,
                estimate,
                v.start,
                v.duration,
                cache=work.root / "features.npz",
            )
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                index, raw, coh = item
                if writer is None:
                    size = (raw.shape[1], raw.shape[0])
                    writer = stack.enter_context(
                        open_output(
                            target,
                            fps,
                            size,
                            settings,
                            audio_from=audio_from,
                            audio_start=v.start,
                            audio_duration=v.duration,
                        )
                    )
                if index < done:
                    out8 = work.load_frame(index)  # finished before the interruption: re-encode it
                    if index == done - 1:
                        chain.restore(raw, out8, timeline.values(index) if timeline is not None else None)
                else:
                    prev_raw, prev_out = chain.prev_raw, chain.prev_out
                    values = timeline.values(index) if timeline is not None else None
                    out8, step_info = chain.step(index, raw, coh, values)
                    metrics.add(raw, out8, prev_raw, prev_out, coh, step_info["cut"], index)
                    if scratch_chain is not None and index in scratch_at:
                        metrics.add_scratch(index, raw, scratch_chain.step(index, raw, None, values)[0])
                    work.save_frame(index, out8)
                writer.write(out8)
                count += 1
                on_progress(count, max(estimate or 0, count) if estimate else None)
            if writer is None:
                raise InputError(f"{input}: no frame could be decoded: check the file plays, and --start/--duration")
    finally:
        # Stop and join the decoder before anything else: a thread still inside OpenCV when the
        # interpreter exits aborts the process ("terminate called without an active exception").
        stop.set()
        producer.join()
    warnings = decode_warnings(input, count, decode_stats.repeated, estimate)  # the caller shows them
    seconds = run.seconds()
    summary = metrics.summary()
    assert size is not None
    size = encoded_size(target.path, size, kind=target.kind)  # the size the file has (H.264/VP9 pad odd sides)
    report_png = None
    if report:
        report_png = report_path(target)
        write_image(report_png, report_figure(metrics, f"{input.name} ({engine.name})"))
    path = run.finish(
        {
            "input": str(input),
            "input_identity": identity,
            "model": engine.name,
            "layers": list(engine.layers),
            "weights": engine.loaded.source.detail,
            "fps": f"{fps.numerator}/{fps.denominator}",
            "frames": count,
            "size": list(size),
            "audio": bool(audio_from),
            "resumed_frames": done,
            "seconds": round(seconds, 3),
            "seconds_per_frame": round(seconds / max(count - done, 1), 4),
            "metrics": summary,
            "per_frame_strength": [round(x, 3) for x in metrics.strength],  # frames rendered in this run
            "per_frame_flicker": [
                round(x, 3) for _, x in metrics.per_frame_flicker()
            ],  # frames after the first of a shot
            "report": str(report_png) if report_png else None,
            "timeline": timeline.describe() if timeline is not None else [],
            # What the decoder met (this run): frames that decoded, broken ones repeated, the header's promise.
            "decode": {
                "decoded_frames": decode_stats.decoded,
                "repeated_frames": decode_stats.repeated,
                "expected_frames": estimate,
            },
            "warnings": warnings,
        }
    )
    return RenderResult(
        target.path, size[0], size[1], count, engine.name, seconds, path, done, summary, run.notes, warnings
    )


def decode_warnings(input: Path, frames: int, repeated: int, expected: int | None) -> list[str]:
    """Warnings for a video that decoded short of its header's promise, or with broken frames."""
    out = []
    if expected and frames < expected * 0.9:
        out.append(
            f"{str(input)!r} gave {frames} of the {expected} frames its header promises: the file is "
            "truncated or damaged; the output is that much shorter (re-encode or re-download the input)"
        )
    if repeated:
        out.append(
            f"{str(input)!r} has {repeated} broken frame{'s' if repeated != 1 else ''} that could not be "
            "decoded: each was replaced by the previous good frame to keep the timing"
        )
    return out


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
    # Render frame index -> strength (mean |out - in|, 0..255) of that frame dreamed from scratch,
    # for the frames ``scratch_at`` asked for (the --report samples).
    scratch: dict[int, float] = field(default_factory=dict)
    # Per stored frame (index - start): the input's step into it, mean |raw_t - raw_t-1| (0..255),
    # what a join's fade is paced by; None for the range's first frame.
    motion: list[float | None] = field(default_factory=list)
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
    scratch_at: frozenset[int] = frozenset(),
) -> RangeResult:
    """Dream the render's frames ``start .. stop - 1`` (``stop`` None = to the end of the source) as one
    chain that begins fresh at ``start``, and keep them as lossless frames in the folder ``work``.

    Frame indices count from the frame at ``settings.video.start``, exactly as render_video numbers
    them: seeds, schedules and audio reactions are those of the whole render. Frames before
    ``start`` are decoded and skipped (exact, whatever the file's timestamps). Resumable: a second
    call continues after the last stored frame; a complete range returns at once. ``tag`` is mixed
    into the work folder's digest (a segment's plan), so another plan never reuses these frames.
    ``scratch_at``: render frame indices also dreamed from scratch (the --report strength samples).
    """
    from .controls import Controls
    from .dream import get_engine
    from .probe import probe, require_moving_video
    from .resume import WorkDir

    t0 = time.perf_counter()
    input, work = Path(input), Path(work)
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError(f"frame range [{start}, {stop}) is empty or negative")
    info = require_moving_video(probe(input))
    engine = get_engine(settings.dream)
    controls = Controls.open(settings, clip=input)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        on_note(msg)

    estimate = estimate_frames(info, settings)
    digest = f"{settings.digest()}/{tag}/{start}:{stop}"
    store = WorkDir(work, digest, with_controls(input_identity(input), settings), root=work)
    done = store.open(resume)  # takes this segment's lock: BusyError if another worker renders it
    try:
        return _render_range(
            input,
            work,
            settings,
            store,
            done,
            digest,
            info,
            engine,
            controls,
            start,
            stop,
            tag,
            estimate,
            notes,
            note,
            on_progress,
            t0,
            scratch_at,
        )
    finally:
        store.release()


def _render_range(
    input: Path,
    work: Path,
    settings: Settings,
    store: Any,
    done: int,
    digest: str,
    info: Any,
    engine: Any,
    controls: Any,
    start: int,
    stop: int | None,
    tag: str,
    estimate: int | None,
    notes: list[str],
    note: NoteFn,
    on_progress: ProgressFn,
    t0: float,
    scratch_at: frozenset[int] = frozenset(),
) -> RangeResult:
    """render_range's body, with the segment's lock held."""
    from .chain import VideoChain
    from .decode import iter_frames
    from .metrics import Metrics

    fps: Fraction = info.fps
    v = settings.video
    complete = work / "range.json"  # written once the range is complete: its result, for a rerun
    if done and complete.is_file():
        try:
            doc = json.loads(complete.read_text())
            if doc.get("digest") == digest and int(doc.get("frames", -1)) == done:
                doc.pop("digest")
                doc["scratch"] = {int(k): float(x) for k, x in doc["scratch"].items()}  # JSON keys are text
                return RangeResult(work=work, **{**doc, "seconds": 0.0, "resumed_frames": done})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # unreadable (or older) marker: finish the range again from its stored frames
    if store.restarted_reason and "--no-resume" not in store.restarted_reason:
        note(f"{tag or 'range'}: {store.restarted_reason}")
    planned = (stop if stop is not None else max(estimate or 0, start + 1)) - start
    if v.max_frames is not None:
        stop = v.max_frames if stop is None else min(stop, v.max_frames)
    frames = iter_frames(input, max_side=settings.dream.max_side, start=v.start, duration=v.duration, max_frames=stop)
    ranged = itertools.islice(frames, start, None)  # decoded and dropped: exact even with uneven timestamps
    chain = VideoChain(engine, settings, controls)
    scratch_chain = VideoChain(engine, settings.replace(coherent=False), controls) if scratch_at else None
    scratch = Metrics()  # only its from-scratch samples: the assembly measures the frames it writes
    q: queue.Queue = queue.Queue(maxsize=4)
    halt = threading.Event()
    producer = threading.Thread(target=_producer, args=(ranged, v.flow, max(done, 1), q, halt), daemon=True)
    producer.start()
    motion: list[float | None] = []
    prev_in: np.ndarray | None = None
    count = 0
    size: tuple[int, int] | None = None
    try:
        with store.discard_if_empty():
            timeline = build_timeline(
                settings,
                input if info.has_audio else None,
                fps,
                estimate,
                v.start,
                v.duration,
                cache=work / "features.npz",
            )
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                local, raw, coh = item
                size = (raw.shape[1], raw.shape[0])
                index = start + local
                values = timeline.values(index) if timeline is not None else None
                cur = raw.astype(np.int16)
                motion.append(None if prev_in is None else float(np.abs(cur - prev_in).mean()))
                prev_in = cur
                if local < done:
                    out8 = store.load_frame(local)
                    if local == done - 1:
                        chain.restore(raw, out8, values)
                else:
                    out8, _ = chain.step(index, raw, coh, values)
                    if scratch_chain is not None and index in scratch_at:
                        scratch.add_scratch(index, raw, scratch_chain.step(index, raw, None, values)[0])
                    store.save_frame(local, out8)
                count += 1
                on_progress(count, max(planned, count))
            if size is None:
                raise InputError(
                    f"{input}: no frame decoded from frame {start} on: check the file plays, and --start/--duration"
                )
    finally:
        halt.set()
        producer.join()  # a decoder thread still inside OpenCV at exit aborts the process
    result = RangeResult(
        work=work,
        start=start,
        frames=count,
        width=size[0],
        height=size[1],
        fps=f"{fps.numerator}/{fps.denominator}",
        model=engine.name,
        seconds=time.perf_counter() - t0,
        resumed_frames=done,
        scratch=dict(scratch.scratch),
        motion=motion,
        notes=notes,
    )
    doc = {
        "digest": digest,
        "start": start,
        "frames": count,
        "width": size[0],
        "height": size[1],
        "fps": result.fps,
        "model": engine.name,
        "scratch": {str(k): x for k, x in scratch.scratch.items()},
        "motion": motion,
        "notes": notes,
    }
    write_atomic(complete, json.dumps(doc))
    return result
