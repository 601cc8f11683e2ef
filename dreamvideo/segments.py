"""One video split into segments that render in parallel, then joined and encoded once.

The render's frames 0..F-1 are cut into N contiguous ranges at boundaries b_0 = 0 < b_1 < ... < b_N = F.
Segment k dreams from ``b_k - P`` (P = ``preroll`` seconds in frames; the first segment has none)
to ``b_(k+1) + J`` (J = ``join`` seconds in frames; the last runs to the end of the source), as one
chain that starts fresh: the P preroll frames let that chain settle (a fresh first frame is much
stronger than the warm frames after it) and are thrown away; the J frames it shares with the next
segment are cross-faded, both chains moving with the scene, the next segment's share rising from 0
to 1 at the pace of the input's own motion (``fade_weights``: linear, ``(t - b_(k+1) + 1) / (J + 1)``,
when the motion is even). Two chains that started at different frames hold different dreams (the
carried detail lasts hundreds of frames), so the join is a transition of J frames, not a splice:
its cost per frame is that difference over J + 1. Seeds and schedules are those of the whole render
(render.render_range numbers frames as render_video does).

Every segment keeps its frames lossless in its own folder under ``<output>.dreamvideo-segments/``
(resume.WorkDir layout), so each one resumes on its own on whichever machine takes it; ``assemble``
then writes the output once, with the source's exact frame rate and its sound muxed once, and
removes the folder. Zoom animations cannot be split: each frame is dreamed from the previous one.

Balancing: segments after the first carry P extra frames and segments before the last J, so the
boundaries are placed to give every segment the same number of frames to dream.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .errors import ConfigError, InputError, OutputError

ProgressFn = Callable[[int, "int | None"], None]
NoteFn = Callable[[str], None]
MAX_SEGMENTS = 1024  # more segments than this is a typo, not a plan


def _noop(*_: Any) -> None:
    pass


@dataclass(frozen=True)
class Segment:
    """One contiguous range of a split render, in the render's frame indices (0 = the first frame)."""

    index: int  # 0-based position
    count: int  # how many segments the render has
    start: int  # first frame dreamed: the preroll's first (= first for the first segment)
    first: int  # first frame kept in the output
    stop: int | None  # one past the last frame dreamed and kept; None = to the end of the source

    @property
    def preroll(self) -> int:
        """Frames dreamed before the first kept one and thrown away."""
        return self.first - self.start

    @property
    def name(self) -> str:
        """'2/3', the way events name a segment."""
        return f"{self.index + 1}/{self.count}"

    @property
    def tag(self) -> str:
        """The plan's part of the segment's work digest: another plan never reuses its frames."""
        return f"segment {self.name} keep {self.first}:{self.stop}"

    def frames_planned(self, total: int) -> int:
        """Frames this segment dreams when the render has ``total`` frames."""
        return (self.stop if self.stop is not None else total) - self.start


def check_splittable(kind: str) -> None:
    """ConfigError unless a job of this kind can be split into segments (only videos can)."""
    if kind == "zoom":
        raise ConfigError(
            "a zoom animation cannot be split into segments (each frame is dreamed from the one "
            "before): drop --segments; zoom jobs run in parallel across the jobs of a batch"
        )
    if kind != "video":
        raise ConfigError(f"a {kind} job cannot be split into segments: only videos can")


def plan(total: int, count: int, preroll: int, join: int) -> list[Segment]:
    """Cut ``total`` frames into ``count`` segments with ``preroll`` and ``join`` frames (see the module doc).

    ConfigError when the segments would be too short to hold their join (use fewer segments).
    """
    if not 1 <= count <= MAX_SEGMENTS:
        raise ConfigError(f"segments must be within 1..{MAX_SEGMENTS}, got {count}")
    if count == 1:
        return [Segment(0, 1, 0, 0, None)]
    # Equal work: lengths L - P*[k>0] - J*[k<N-1] summing to total.
    per = (total + (count - 1) * (preroll + join)) / count
    lengths = [per - (preroll if k > 0 else 0) - (join if k < count - 1 else 0) for k in range(count)]
    bounds = [0]
    acc = 0.0
    for length in lengths[:-1]:
        acc += length
        bounds.append(int(round(acc)))
    bounds.append(total)
    shortest = min(b - a for a, b in zip(bounds, bounds[1:]))
    if shortest < max(join, 1) or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ConfigError(
            f"{count} segments of a {total}-frame render leave some shorter than the "
            f"{join}-frame join: use fewer segments (or a shorter preroll/join)"
        )
    out = []
    for k in range(count):
        first = bounds[k]
        start = max(first - preroll, 0) if k > 0 else 0
        stop = bounds[k + 1] + join if k < count - 1 else None
        out.append(Segment(k, count, start, first, stop))
    return out


def seconds_to_frames(seconds: float, fps: Fraction) -> int:
    """Whole frames in ``seconds`` at the exact ``fps`` (rounded)."""
    return int(round(float(seconds) * float(fps)))


@dataclass(frozen=True)
class SplitPlan:
    """A video render cut into segments: what every worker and the final assembly need (paths only)."""

    input: Path  # the source video
    output: Path  # the final output (its checked kind in ``kind``)
    kind: str  # the output's kind (encode.OUTPUT_KINDS): "h264", "vp9", "gif" or "frames"
    settings: Settings  # the render's resolved settings
    segments: tuple[Segment, ...]  # in order
    total: int  # frames the render is expected to have (the header's count; the last segment runs to the end)
    fps: str  # the source's exact frame rate, "num/den"
    join: int  # overlap frames between adjacent segments
    report: bool = False  # also write the --report figure (segments dream their from-scratch samples)

    @property
    def root(self) -> Path:
        """The folder holding every segment's frames: ``<output>.dreamvideo-segments/`` beside the output."""
        return segments_dir(self.output)

    def work(self, segment: Segment) -> Path:
        """One segment's frames folder."""
        return self.root / f"{segment.index + 1:03d}-of-{segment.count:03d}"

    def frames_planned(self) -> int:
        """Frames all segments dream together, prerolls and joins included."""
        return sum(s.frames_planned(self.total) for s in self.segments)


def segments_dir(output: Path) -> Path:
    """Where a split render keeps its segments: beside the output, named after it."""
    output = Path(output)
    return output.parent / f"{output.name or 'output'}.dreamvideo-segments"


def make_plan(
    input: str | Path, output: str | Path | Any, settings: Settings, count: int, *, report: bool = False
) -> SplitPlan:
    """Probe the source and cut its render into ``count`` segments (settings' preroll and join, in seconds).
    ``report``: the assembly also writes the --report figure beside the output.

    The frame count comes from the header (it may lie): the last segment runs to the real end of the
    stream, and a source that ends early only shortens the last segments.
    """
    from .probe import probe, require_moving_video
    from .render import estimate_frames
    from .toolkit import VIDEO_KINDS, output_target

    input = Path(input)
    info = require_moving_video(probe(input))
    target = output_target(output, [input], allowed=VIDEO_KINDS, crf=settings.encode.crf)
    total = estimate_frames(info, settings)
    if not total:
        raise InputError(
            f"{str(input)!r}: its length is unknown, so it cannot be split into segments: "
            "render it without --segments (or re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
        )
    fps: Fraction = info.fps
    v = settings.video
    pre, join = seconds_to_frames(v.preroll, fps), seconds_to_frames(v.join, fps)
    segs = plan(total, count, pre, join)
    return SplitPlan(
        input,
        target.path,
        target.kind,
        settings,
        tuple(segs),
        total,
        f"{fps.numerator}/{fps.denominator}",
        join,
        report,
    )


def render_segment(
    split: SplitPlan, segment: Segment, *, on_progress: ProgressFn = _noop, on_note: NoteFn = _noop, resume: bool = True
) -> Any:
    """Dream one segment into its folder (resumable); returns render.RangeResult.

    With ``split.report`` the segment also dreams from scratch the report's sampled frames
    (metrics.scratch_indices of the whole render) that fall among the frames it keeps.
    """
    from .metrics import scratch_indices
    from .render import render_range

    work = split.work(segment)
    try:
        work.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create {str(work.parent)!r} ({err.strerror}): choose an output folder you can write to"
        ) from None
    return render_range(
        split.input,
        work,
        split.settings,
        start=segment.start,
        stop=segment.stop,
        tag=segment.tag,
        on_progress=on_progress,
        on_note=on_note,
        resume=resume,
        scratch_at=frozenset(
            t
            for t in (scratch_indices(split.total) if split.report else [])
            if segment.first <= t < (segment.stop if segment.stop is not None else split.total)
        ),
    )


def cross_fade(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(1 - w) * a + w * b of two HxWx3 uint8 frames, w in 0..1; uint8 out."""
    mix = (1.0 - w) * a.astype(np.float32) + w * b.astype(np.float32)
    return np.clip(np.rint(mix), 0, 255).astype(np.uint8)


STILL_SHARE = 0.25  # share of the window's mean motion a cross-fade step always gets: it advances on a still scene


def fade_weights(motion: Sequence[float]) -> list[float]:
    """The next segment's share at each frame of a join, from the input's motion.

    ``motion``: mean |raw_t - raw_t-1| (0..255) of the steps into the J overlap frames and into the
    first frame after them (J + 1 values). The fade advances with the scene's motion (plus
    ``STILL_SHARE`` of its mean, so it also moves while nothing does): the change from one chain's
    dream to the other's lands where the picture changes anyway, not on a calm frame where it would
    show (bench/bench_joins.py). Returns J weights rising in 0..1 (exclusive); equal motion gives the
    linear fade ``(t + 1) / (J + 1)``.
    """
    m = np.asarray(motion, dtype=np.float64)
    if m.size == 0:
        return []
    gains = m + STILL_SHARE * float(m.mean()) + 1e-9
    cum = np.cumsum(gains) / gains.sum()
    return [float(x) for x in cum[:-1]]


def _motion_at(results: Sequence[Any], index: int) -> float | None:
    """The input's step into frame ``index`` as a segment recorded it (None when none did)."""
    for r in results:
        i = index - r.start
        if 0 <= i < len(r.motion) and r.motion[i] is not None:
            return float(r.motion[i])
    return None


def joined_frames(split: SplitPlan, results: Sequence[Any]) -> Iterable[tuple[int, np.ndarray, int]]:
    """The output's frames in order, as (index, HxWx3 uint8 frame, segment that owns it).

    A frame inside an overlap is the cross-fade of both segments' frames, paced by the input's
    motion the segments recorded (``RangeResult.motion``; a linear fade where none is known). Stops
    at the first frame no segment holds (a source that ended before the header said).
    """
    from .decode import read_image

    ends = [r.start + r.frames for r in results]
    weights: dict[int, list[float]] = {}  # segment k -> its share at each frame of its join with k-1
    t = 0
    while True:
        owners = [k for k, seg in enumerate(split.segments) if seg.first <= t < ends[k]]
        if not owners:
            return
        k = owners[-1]
        frame = read_image(results[k].frame_path(t))
        if len(owners) > 1:
            j = owners[-2]
            seg = split.segments[k]
            overlap = ends[j] - seg.first  # the join as it came out (a short source may shorten it)
            if k not in weights:
                steps = [_motion_at(results, u) for u in range(seg.first, seg.first + overlap + 1)]
                known = [x for x in steps if x is not None]
                fill = float(np.mean(known)) if known else 1.0  # unknown steps move like the known ones
                weights[k] = fade_weights([fill if x is None else x for x in steps])
            w = weights[k][t - seg.first]
            frame = cross_fade(read_image(results[j].frame_path(t)), frame, w)
        yield t, frame, k
        t += 1


def assemble(
    split: SplitPlan,
    results: Sequence[Any],
    *,
    command: str | None = None,
    on_progress: ProgressFn = _noop,
    on_note: NoteFn = _noop,
    where: Sequence[str] = (),
    record: dict[str, Any] | None = None,
) -> Any:
    """Join the finished segments into the output (written once: exact fps, the source's sound muxed
    once), write the settings JSON beside it, remove the segments' folder. Returns render.RenderResult.

    The metrics are those of the frames written, cross-faded joins included: the source is decoded
    alongside and its flow computed again (a small cost beside the dream), exactly as a whole
    render measures itself, so a split render's flicker says what its joins did. With
    ``split.report`` the --report figure is written beside the output too.

    ``results``: each segment's render.RangeResult, in order; ``where``: where each one ran, for the
    settings file; ``record``: extra keys for it (a batch's manifest and job).
    """
    from .decode import iter_frames
    from .encode import write_image
    from .flow import FlowEstimator, coherence, is_scene_cut
    from .metrics import Metrics, report_figure
    from .probe import probe
    from .timing import parse_fps
    from .toolkit import OutputTarget, RenderResult, open_output, report_path, write_settings_file

    t0 = time.perf_counter()
    if len(results) != len(split.segments):
        raise ValueError("one result per segment is needed")
    settings, v = split.settings, split.settings.video
    fps = parse_fps(split.fps)
    info = probe(split.input)
    audio_from = split.input if (settings.encode.audio and info.has_audio) else None
    first = results[0]
    size = (first.width, first.height)
    metrics = Metrics(keep_thumbs=split.report)
    count = 0
    total_hint = split.total
    sources = iter_frames(
        split.input, max_side=settings.dream.max_side, start=v.start, duration=v.duration, max_frames=v.max_frames
    )
    flow = FlowEstimator(v.flow)
    prev_raw: np.ndarray | None = None
    prev_out: np.ndarray | None = None
    try:
        with open_output(
            OutputTarget(split.output, split.kind),
            fps,
            size,
            settings,
            audio_from=audio_from,
            audio_start=v.start,
            audio_duration=v.duration,
        ) as writer:
            for t, frame, k in joined_frames(split, results):
                writer.write(frame)
                count += 1
                raw = next(sources, None)  # the source frame t (the segments decoded the same stream)
                if raw is not None and raw.shape == frame.shape:
                    coh = coherence(raw, prev_raw, flow) if prev_raw is not None else None
                    cut = coh is not None and is_scene_cut(coh[2], v.scene_cut)
                    metrics.add(raw, frame, prev_raw, prev_out, coh, cut, t)
                    if t in results[k].scratch:  # the owner's from-scratch sample
                        metrics.scratch[t] = results[k].scratch[t]
                    prev_raw, prev_out = raw, frame
                on_progress(count, max(total_hint, count))
    finally:
        close = getattr(sources, "close", None)
        if close is not None:
            close()
    seconds = time.perf_counter() - t0
    summary = metrics.summary()
    dreamed = sum(r.frames - r.resumed_frames for r in results)
    busy = sum(r.seconds for r in results)
    extra = {
        "command": command,
        "input": str(split.input),
        "model": first.model,
        "fps": split.fps,
        "frames": count,
        "size": list(size),
        "audio": bool(audio_from),
        "resumed_frames": sum(r.resumed_frames for r in results),
        "seconds": round(seconds + busy, 3),
        "seconds_per_frame": round(busy / max(dreamed, 1), 4),
        "metrics": summary,
        "segments": [
            {
                "start": s.start,
                "first": s.first,
                "stop": s.stop,
                "frames": r.frames,
                "resumed_frames": r.resumed_frames,
                "seconds": round(r.seconds, 3),
                "where": where[i] if i < len(where) else None,
            }
            for i, (s, r) in enumerate(zip(split.segments, results))
        ],
        "join_frames": split.join,
        **(record or {}),
    }
    if split.report:
        png = report_path(OutputTarget(split.output, split.kind))
        write_image(png, report_figure(metrics, f"{split.input.name} ({first.model}, {len(results)} segments)"))
        extra["report"] = str(png)
    path = write_settings_file(OutputTarget(split.output, split.kind), settings, extra)
    shutil.rmtree(split.root, ignore_errors=True)
    notes = [n for r in results for n in r.notes]
    return RenderResult(
        split.output,
        size[0],
        size[1],
        count,
        first.model,
        seconds + busy,
        path,
        extra["resumed_frames"],
        summary,
        notes,
    )


def render_split(
    input: str | Path,
    output: str | Path,
    settings: Settings,
    count: int,
    *,
    command: str | None = None,
    on_progress: ProgressFn = _noop,
    on_note: NoteFn = _noop,
    resume: bool = True,
    report: bool = False,
) -> Any:
    """Render a video as ``count`` segments one after another in this process, then join them.

    The same result as the cluster's parallel run (each segment is its own chain); for tests,
    and for checking a split's joins on one machine. Returns render.RenderResult.
    """
    split = make_plan(input, output, settings, count, report=report)
    planned = split.frames_planned()
    done_before = 0
    results = []
    for seg in split.segments:

        def progress(done: int, _total: int | None, base: int = done_before) -> None:
            on_progress(base + done, max(planned, base + done))

        result = render_segment(split, seg, on_progress=progress, on_note=on_note, resume=resume)
        results.append(result)
        done_before += result.frames
    return assemble(split, results, command=command, on_note=on_note)


__all__ = [
    "Segment",
    "SplitPlan",
    "assemble",
    "check_splittable",
    "cross_fade",
    "fade_weights",
    "joined_frames",
    "make_plan",
    "plan",
    "render_segment",
    "render_split",
    "segments_dir",
    "seconds_to_frames",
]
