"""Overnight batches: the runner. Jobs of a validated manifest (manifest.py) run one by one, resumable.

Running: a job whose output exists and whose settings JSON beside it records the same settings
(digest) and input is skipped as done; an interrupted video job resumes from its work folder
(render.py / resume.py); a failing job is logged and reported, and the rest run. Each job appends
to its log file ``<manifest-stem>.logs/NN-name.log`` beside the manifest. ``--dry-run`` estimates
frames and time per job (the cost model below) and renders nothing.

The library never prints: it reports through ``on_event(line)`` and ``on_progress(done, total)``.
``load_manifest`` and ``Job``/``Manifest`` live in manifest.py and are importable from here too.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import settings_from_dict
from .decode import scaled_size
from .errors import DreamVideoError, InputError, OutputError
from .manifest import JOB_KINDS, Job, Manifest, load_manifest
from .toolkit import ProgressFn, noop, settings_path

__all__ = [
    "BatchSummary",
    "Executor",
    "JOB_KINDS",
    "Job",
    "JobOutcome",
    "Manifest",
    "append_log",
    "done_reason",
    "estimate",
    "format_summary",
    "job_tag",
    "job_what",
    "load_manifest",
    "outcome_line",
    "run_batch",
    "run_job",
    "run_local",
]

# Rough cost of ONE gradient step on a 1-megapixel image, in seconds, for --dry-run estimates.
# Measured once (not at run time) on a 2-core x86 CPU with TensorFlow 2.x: InceptionV3 ~1.9 s,
# EfficientNet-Lite0 ~0.22 s. A GPU is 10-50x faster, so on one these are upper bounds. Once a job
# has run, the seconds_per_frame of its settings JSON is used instead.
SECONDS_PER_MEGAPIXEL_STEP: dict[str, float] = {"inception_v3": 2.0, "efficientnet_lite0": 0.25}
DEFAULT_SECONDS_PER_MEGAPIXEL_STEP = 2.0  # other models
SECONDS_PER_STEP_CALL = 0.02  # fixed cost of one step at one octave whatever its size (dominates small frames)
SECONDS_PER_FRAME_OVERHEAD = 0.03  # decode, flow, colour match, encode, saving the resume frame
# Fixed costs, paid once per batch process (bench/bench_stage_costs.py, figures in bench/RESULTS.md):
SECONDS_TENSORFLOW_IMPORT = 10.0  # importing TensorFlow and Keras, before the first job
# Building a model, loading its weights and tracing its first step, before its first job.
SECONDS_MODEL_LOAD: dict[str, float] = {"inception_v3": 25.0, "efficientnet_lite0": 12.0}
DEFAULT_SECONDS_MODEL_LOAD = 25.0  # other models

EventFn = Callable[[str], None]  # one line per event


# --- running -------------------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """What happened to one job (or, in a dry run, what would)."""

    job: Job  # the job
    status: str  # "done", "skipped", "failed", or in a dry run "would-run", "would-resume", "would-skip"
    seconds: float = 0.0  # wall time spent on the job (0 for skipped and dry-run jobs)
    frames: int | None = None  # frames written, or in a dry run the estimate; None = unknown
    resumed_frames: int = 0  # finished frames reused from an interrupted run (dry run: frames - this are to do)
    reason: str | None = None  # one line: why it failed, why it was skipped, or a dry-run remark
    estimated_seconds: float | None = None  # dry run only: rough time the job would take
    log: Path | None = None  # the job's log file (None in a dry run)
    where: str | None = None  # where it ran, on a cluster ("10.0.0.5 (1a2b3c4d) worker 2"); None = here
    warnings: list[str] = field(default_factory=list)  # what the render warned about (a damaged input)


@dataclass
class BatchSummary:
    """The outcome of run_batch."""

    manifest: Path  # the manifest that ran
    dry_run: bool  # True when nothing was rendered
    outcomes: list[JobOutcome]  # one per job, in manifest order
    seconds: float  # wall time of the whole batch

    def _with(self, status: str) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[JobOutcome]:
        """Jobs rendered in this run."""
        return self._with("done")

    @property
    def skipped(self) -> list[JobOutcome]:
        """Jobs already done before this run."""
        return self._with("skipped")

    @property
    def failed(self) -> list[JobOutcome]:
        """Jobs that failed (the CLI exits 1 when there is any)."""
        return self._with("failed")


def _settings_path(job: Job) -> Path:
    return settings_path(job.target)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _recorded_digest(doc: Mapping[str, Any]) -> str | None:
    """The settings digest a settings JSON records (or recomputed from its settings)."""
    if isinstance(doc.get("digest"), str):
        return doc["digest"]
    try:
        return settings_from_dict(doc.get("settings") or {}).digest()
    except (DreamVideoError, TypeError, ValueError, AttributeError):
        return None


def done_reason(job: Job) -> str | None:
    """Why a job counts as already done, or None when it must run.

    Done = the output exists, the settings JSON beside it records the same settings digest and the
    same input, and the input has not been modified since that JSON was written.
    """
    out = job.output
    if not out.exists():
        return None
    try:
        if out.is_dir() and not any(out.iterdir()):
            return None  # an empty frames folder (created before a run that then failed)
    except OSError:
        return None  # unreadable: not provably done, so the job runs (and reports its own error)
    sidecar = _settings_path(job)
    doc = _read_json(sidecar)
    if doc is None or _recorded_digest(doc) != job.settings.digest():
        return None
    if job.input is not None:
        recorded = doc.get("input")
        if not recorded or Path(os.path.abspath(recorded)) != job.input:
            return None
        try:
            if job.input.stat().st_mtime_ns > sidecar.stat().st_mtime_ns:
                return None  # the input was replaced after the render
            recorded_identity = doc.get("input_identity")
            if isinstance(recorded_identity, dict):  # by content: `cp -p` of another clip keeps the mtime
                from .resume import input_identity

                if input_identity(job.input) != recorded_identity:
                    return None
        except (OSError, DreamVideoError):
            pass  # input not mounted right now: the finished output still stands
    recorded_controls = doc.get("control_identity")
    if isinstance(recorded_controls, dict):  # a guide or mask replaced under the same name
        from .resume import control_identity

        try:
            if control_identity(job.settings) != recorded_controls:
                return None
        except DreamVideoError:
            pass  # not mounted right now: the finished output still stands
    if job.soundtrack is not None and doc.get("soundtrack") != str(job.soundtrack):
        return None  # another sound track
    warnings = doc.get("warnings")
    if isinstance(warnings, list) and warnings:  # done, but not as asked: say so on every rerun
        return f"already done ({_show(out)}, same settings), with a warning: {warnings[0]}"
    return f"already done ({_show(out)}, same settings)"


def _resumable_frames(job: Job) -> int:
    """Finished frames an interrupted run left that a re-run would keep (0 if none or other settings)."""
    from .resume import work_dir_for

    state = _read_json(work_dir_for(job.output) / "state.json")
    if not state or state.get("digest") != job.settings.digest():
        return 0
    try:
        return max(int(state.get("frames_done", 0)), 0)
    except (TypeError, ValueError):
        return 0


def _show(path: Path) -> str:
    """A path relative to the current folder when it is below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _octave_area(octaves: int, scale: float) -> float:
    """Pixels an octave pyramid processes, relative to the full size."""
    return sum(scale ** (-2 * k) for k in range(max(octaves, 1)))


def _default_model() -> str:
    """The model an unset `model` will most likely use: InceptionV3 when its weights are at hand."""
    from .model import DEFAULT_MODEL, FALLBACK_MODEL, find_weights, get_spec

    try:
        local = find_weights(get_spec(DEFAULT_MODEL)).kind in ("local", "installed", "cached")
    except DreamVideoError:  # pragma: no cover
        local = False
    return DEFAULT_MODEL if local else FALLBACK_MODEL


def estimate(job: Job, loaded: set[str] | None = None) -> tuple[int | None, float | None, str]:
    """(frames, seconds, remark) for a dry run, with the fixed start-up cost when ``loaded`` is given.

    ``loaded``: the models earlier jobs of this batch load (updated here); the first job pays
    SECONDS_TENSORFLOW_IMPORT, and each model's first job its SECONDS_MODEL_LOAD.
    """
    frames, seconds, remark = _render_estimate(job)
    if seconds is not None and loaded is not None:
        model = job.settings.dream.model or _default_model()
        seconds += 0.0 if loaded else SECONDS_TENSORFLOW_IMPORT
        seconds += 0.0 if model in loaded else SECONDS_MODEL_LOAD.get(model, DEFAULT_SECONDS_MODEL_LOAD)
        loaded.add(model)
    return frames, seconds, remark


def _render_estimate(job: Job) -> tuple[int | None, float | None, str]:
    """(frames, seconds, remark) of the rendering alone. Probes the input; measures nothing.

    Frames: 1 for an image; render.estimate_frames for a video; seconds * fps for a zoom.
    Seconds: frames x the last run's seconds_per_frame when a settings JSON is beside the output,
    else from rough constants: per frame, steps x (megapixels x SECONDS_PER_MEGAPIXEL_STEP summed over
    the octaves + SECONDS_PER_STEP_CALL per octave) + SECONDS_PER_FRAME_OVERHEAD; the first frame
    of a video or zoom uses steps/octaves, the rest warm_steps/warm_octaves.
    """
    from .probe import probe
    from .render import estimate_frames

    s = job.settings
    remark = ""
    size: tuple[int, int] | None = None
    frames: int | None = None
    if job.kind == "zoom":
        from .zoom import frame_count

        frames = frame_count(s.zoom.seconds, s.zoom.fps)
        size = s.zoom.size
    if job.input is not None:
        try:
            info = probe(job.input)
        except DreamVideoError as err:
            remark = f"input not readable now, the job will fail unless that changes: {err}"
            info = None
        if info is not None:
            if job.kind == "video":
                if info.fps is None:
                    remark = "input is not a video: the job will fail"
                else:
                    frames = estimate_frames(info, s)
            elif job.kind == "image":
                frames = 1
            if size is None and info.width and info.height:
                size = scaled_size(info.width, info.height, s.dream.max_side)
    if job.kind == "image" and frames is None and not remark:
        frames = 1
    if frames is None:
        return None, None, remark
    doc = _read_json(_settings_path(job))
    per_frame = None
    if doc:
        spf = doc.get("seconds_per_frame")
        if spf is None and job.kind == "image":
            spf = doc.get("seconds")
        if isinstance(spf, (int, float)) and spf > 0:
            per_frame = float(spf)
            remark = remark or "time from the last run"
    if per_frame is not None:
        return frames, frames * per_frame, remark
    if size is None:
        return frames, None, remark
    d, v = s.dream, s.video
    mp = size[0] * size[1] / 1e6
    rate = SECONDS_PER_MEGAPIXEL_STEP.get(d.model or _default_model(), DEFAULT_SECONDS_PER_MEGAPIXEL_STEP)

    def cost(steps: int, octaves: int) -> float:
        return steps * (mp * rate * _octave_area(octaves, d.octave_scale) + octaves * SECONDS_PER_STEP_CALL)

    first = cost(d.steps, d.octaves)
    warm = cost(v.warm_steps, min(v.warm_octaves, d.octaves)) if (v.coherent or job.kind == "zoom") else first
    return frames, first + max(frames - 1, 0) * warm + frames * SECONDS_PER_FRAME_OVERHEAD, remark


class _Log:
    """Append-only per-job log: timestamped lines, opened per write so a crash loses nothing."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                for line in str(text).splitlines() or [""]:
                    fh.write(f"{stamp}  {line}\n")
        except OSError:  # the log is best effort: a full disk must not stop the night's renders
            pass


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _render(job: Job, manifest: Manifest, command: str, on_note: Callable[[str], None], on_progress: ProgressFn) -> Any:
    """Call the job's renderer (imported here: tests replace it); returns its RenderResult.

    The output goes as its resolved target (path and kind, so a "run.6/" folder stays a folder);
    the batch's own keys (manifest, job) are written into the settings JSON with the renderer's.
    """
    from .render import render_image, render_video

    if job.input is not None and not job.input.exists():
        raise InputError(f"input {str(job.input)!r} not found: check the path (or mount the drive) and run again")
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)  # the folder that holds the output, not the output
    except OSError as err:
        raise OutputError(
            f"cannot create the folder {str(job.output.parent)!r} ({err.strerror}): "
            "choose an output in a folder you can write to"
        ) from None
    record = {"batch": {"manifest": str(manifest.path), "job": job.name, "index": job.index}}
    common: dict[str, Any] = {"command": command, "on_note": on_note, "record": record}
    if job.kind == "image":
        return render_image(job.input, job.target, job.settings, **common)
    if job.kind == "video":
        return render_video(job.input, job.target, job.settings, on_progress=on_progress, resume=True, **common)
    from .zoom import render_zoom

    return render_zoom(
        job.input, job.target, job.settings, on_progress=on_progress, resume=True, soundtrack=job.soundtrack, **common
    )


RenderFn = Callable[[Job, Manifest, str, Callable[[str], None], ProgressFn], Any]  # as _render
# An executor runs the jobs that must run (in any order, anywhere) and yields their outcomes as they
# finish: executor(jobs, manifest, command, on_event, on_progress). run_local is the default one.
Executor = Callable[[list[Job], Manifest, str, EventFn, ProgressFn], Iterator["JobOutcome"]]


def append_log(manifest: Manifest, job: Job, text: str) -> None:
    """Append timestamped lines to the job's log (best effort, like every log write)."""
    _Log(manifest.log_path(job))(text)


def job_tag(job: Job, manifest: Manifest) -> str:
    """'[2/3] beach', the way event lines name a job."""
    return f"[{job.index}/{len(manifest.jobs)}] {job.name}"


def job_what(job: Job) -> str:
    """'video in.mp4 -> out/b.mp4', what a job does."""
    return f"{job.kind} {_show(job.input) if job.input else '(noise)'} -> {_show(job.output)}"


def run_job(
    job: Job,
    manifest: Manifest,
    command: str,
    *,
    on_note: Callable[[str], None] = noop,
    on_progress: ProgressFn = noop,
    render: RenderFn | None = None,
) -> JobOutcome:
    """Render one job that must run, with its log; never raises for the job's own failure (a
    DreamVideoError or a bug becomes a failed outcome). KeyboardInterrupt is logged and re-raised
    (finished frames stay). Runs wherever an executor calls it (a Ray worker too): it reads and
    writes only paths. ``render`` replaces _render (a split video's assembly).
    """
    log = _Log(manifest.log_path(job))
    log(f"=== {job.label} of {manifest.path}: {job_what(job)}")
    log(
        f"settings digest {job.settings.digest()}, preset {job.preset or '(none)'}, "
        f"overrides {json.dumps(job.overrides, default=str)}"
    )
    start = time.perf_counter()

    def note(message: str) -> None:
        log(f"note: {message}")
        on_note(message)

    job_command = f'{command} (manifest {manifest.path}, job {job.index} "{job.name}")'
    try:
        result = (render or _render)(job, manifest, job_command, note, on_progress)
    except DreamVideoError as err:
        return _failed(job, _one_line(err), start, log)
    except KeyboardInterrupt:
        log(f"interrupted after {_fmt_seconds(time.perf_counter() - start)}: finished frames are kept")
        raise
    except Exception as err:  # an unexpected bug must not cost the rest of the night
        log(traceback.format_exc())
        return _failed(job, f"{type(err).__name__}: {_one_line(err)} (traceback in {_show(log.path)})", start, log)
    seconds = time.perf_counter() - start
    resumed = int(getattr(result, "resumed_frames", 0) or 0)
    frames = int(getattr(result, "frames", 1) or 1)
    warnings = [str(w) for w in (getattr(result, "warnings", None) or [])]  # e.g. a damaged input
    outcome = JobOutcome(
        job,
        "done",
        seconds=seconds,
        frames=frames,
        resumed_frames=resumed,
        log=log.path,
        reason=f"warning: {warnings[0]}" if warnings else None,
        warnings=warnings,
    )
    log(outcome_line(outcome))
    log(f"settings: {_show(result.settings_path)}")
    for w in warnings:
        log(f"warning: {w}")
    return outcome


def outcome_line(outcome: JobOutcome) -> str:
    """'done in 12.3 s (40 frames, 0.31 s/frame) -> out/b.mp4' or 'FAILED: reason' (and where it ran)."""
    where = f" (on {outcome.where})" if outcome.where else ""
    if outcome.status == "failed":
        return f"FAILED: {outcome.reason}{where}"
    frames, resumed = outcome.frames or 1, outcome.resumed_frames
    extra = f", {resumed} frames resumed" if resumed else ""
    per_frame = outcome.seconds / max(frames - resumed, 1)
    return (
        f"done in {_fmt_seconds(outcome.seconds)} ({frames} frame{'s' if frames != 1 else ''}{extra}, "
        f"{per_frame:.2f} s/frame) -> {_show(outcome.job.output)}{where}"
    )


def run_local(
    jobs: list[Job], manifest: Manifest, command: str, on_event: EventFn, on_progress: ProgressFn
) -> Iterator[JobOutcome]:
    """The default executor: the jobs one by one in this process, in manifest order."""
    for job in jobs:
        tag = job_tag(job, manifest)
        on_event(f"{tag}: {job_what(job)}")
        yield run_job(
            job, manifest, command, on_note=lambda m, tag=tag: on_event(f"{tag}: note: {m}"), on_progress=on_progress
        )


def run_batch(
    manifest: Manifest,
    *,
    dry_run: bool = False,
    on_event: EventFn = noop,
    on_progress: ProgressFn = noop,
    command: str | None = None,
    executor: Executor | None = None,
) -> BatchSummary:
    """Run every job of a validated manifest; never raises for a job's failure.

    on_event(line): one line per event ("[2/3] beach: done in 12.3 s ...", notes, failures).
    on_progress(done, total): frames of the running job (total may be None or change); with a
    cluster executor, frames over the whole cluster.
    command: the command line that started the batch, recorded in each settings JSON with the
    manifest path and the job. executor: who runs the jobs that must run (default run_local: in
    order, here; cluster.batch_executor: across a Ray cluster). KeyboardInterrupt is logged and
    re-raised (finished frames stay).

    Args:
        manifest: a manifest from ``load_manifest``.
        dry_run: True plans every job (what it would do, or why it is skipped) and renders nothing.
        on_event: called with one line per event (``on_event(line)``).
        on_progress: called as ``on_progress(done, total_or_None)`` with the running job's frames.
        command: the command line to record; None = "dreamvideo batch MANIFEST".
        executor: runs the jobs that must run and yields their outcomes; None = ``run_local``.

    Returns:
        BatchSummary: the manifest path, whether it was a dry run, one JobOutcome per job in manifest
        order (done, skipped or failed, with its reason, log and warnings) and the batch's wall time
        in seconds.

    Raises:
        OutputError: the log folder beside the manifest cannot be created.
        KeyboardInterrupt: re-raised after it is logged.
    """
    t0 = time.perf_counter()
    base_command = command or f"dreamvideo batch {manifest.path}"
    outcomes: list[JobOutcome] = []
    loaded: set[str] = set()  # models a dry run's earlier jobs load (their start-up is paid once)
    if not dry_run:
        try:
            manifest.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(
                f"cannot create the log folder {str(manifest.log_dir)!r} ({err.strerror}): "
                "put the manifest in a folder you can write to"
            ) from None
    todo: list[Job] = []
    for job in manifest.jobs:
        tag = job_tag(job, manifest)
        try:
            done = done_reason(job)
            if dry_run:
                outcomes.append(_plan(job, tag, job_what(job), done, on_event, loaded))
                continue
        except DreamVideoError as err:  # this job alone: the rest of the batch (or dry run) goes on
            reason = f"{manifest.path}: {job.label}: {_one_line(err)}"
            on_event(f"{tag}: FAILED: {reason}")
            outcomes.append(JobOutcome(job, "failed", reason=reason))
            continue
        if done:
            log = _Log(manifest.log_path(job))
            log(f"=== {job.label} of {manifest.path}: {job_what(job)}")
            log(f"skipped: {done}")
            on_event(f"{tag}: skipped: {done}")
            outcomes.append(JobOutcome(job, "skipped", reason=done, log=log.path))
            continue
        todo.append(job)
    if todo:
        for outcome in (executor or run_local)(todo, manifest, base_command, on_event, on_progress):
            tag = job_tag(outcome.job, manifest)
            on_event(f"{tag}: {outcome_line(outcome)}")
            for w in outcome.warnings:
                on_event(f"{tag}: warning: {w}")
            outcomes.append(outcome)
    outcomes.sort(key=lambda o: o.job.index)
    return BatchSummary(manifest=manifest.path, dry_run=dry_run, outcomes=outcomes, seconds=time.perf_counter() - t0)


def _failed(job: Job, reason: str, start: float, log: _Log) -> JobOutcome:
    seconds = time.perf_counter() - start
    log(f"FAILED after {_fmt_seconds(seconds)}: {reason}")
    return JobOutcome(job, "failed", seconds=seconds, reason=reason, log=log.path)


def _plan(job: Job, tag: str, what: str, done: str | None, on_event: EventFn, loaded: set[str]) -> JobOutcome:
    if done:
        on_event(f"{tag}: would skip: {done}")
        return JobOutcome(job, "would-skip", reason=done)
    frames, seconds, remark = estimate(job, loaded)
    resumable = _resumable_frames(job) if job.kind != "image" else 0
    if frames is not None and resumable and seconds is not None:
        seconds *= max(frames - resumable, 0) / max(frames, 1)
    parts = [f"~{frames} frame{'s' if frames != 1 else ''}" if frames is not None else "frames unknown"]
    if resumable:
        parts.append(f"resumes after {resumable} finished")
    parts.append(f"~{_fmt_seconds(seconds)}" if seconds is not None else "time unknown")
    if remark:
        parts.append(remark)
    on_event(f"{tag}: would render {what} ({', '.join(parts)})")
    return JobOutcome(
        job,
        "would-resume" if resumable else "would-run",
        frames=frames,
        resumed_frames=resumable,
        reason=remark or None,
        estimated_seconds=seconds,
    )


def format_summary(summary: BatchSummary) -> list[str]:
    """The summary table as lines of text (the CLI prints them)."""
    rows = []
    for o in summary.outcomes:
        if summary.dry_run:
            time_text = f"~{_fmt_seconds(o.estimated_seconds)}" if o.estimated_seconds is not None else "-"
        else:
            time_text = _fmt_seconds(o.seconds) if o.status in ("done", "failed") else "-"
        frames = "-" if o.frames is None else str(o.frames)
        if o.frames is not None and o.resumed_frames:
            frames = f"{o.frames} ({o.resumed_frames} kept)"
        detail = (
            o.reason
            if o.status in ("failed", "skipped", "would-skip")
            or (o.reason and summary.dry_run)
            or (o.status == "done" and o.reason)
            else _show(o.job.output)
        )
        if o.where:
            detail = f"{detail or ''} (on {o.where})".strip()
        rows.append(
            (
                str(o.job.index),
                o.job.name,
                o.status.upper() if o.status == "failed" else o.status,
                time_text,
                frames,
                detail or "",
            )
        )
    head = ("#", "job", "status", "time", "frames", "detail")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = []
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    if summary.dry_run:
        total = sum(o.estimated_seconds or 0 for o in summary.outcomes)
        frames = sum((o.frames or 0) - o.resumed_frames for o in summary.outcomes if o.status != "would-skip")
        lines.append(
            f"dry run: {len(summary.outcomes)} jobs, ~{frames} frames to render, ~{_fmt_seconds(total)} "
            "estimated (rough); nothing was rendered"
        )
    else:
        lines.append(
            f"{len(summary.done)} done, {len(summary.skipped)} skipped, {len(summary.failed)} failed "
            f"in {_fmt_seconds(summary.seconds)}; "
            f"logs in {_show(summary.manifest.parent / (summary.manifest.stem + '.logs'))}"
        )
    return lines
