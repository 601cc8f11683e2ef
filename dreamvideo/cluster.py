"""Render on many machines with Ray: batches across a cluster, and one video split into segments.

Workers are long-lived Ray actors (``Worker``) that load the model once (dream.get_engine keeps
engines per process) and take unit after unit: a whole batch job, one segment of a split video,
or the assembly of a split video. One per GPU where the cluster has GPUs (``num_gpus=1``,
TensorFlow memory growth on); otherwise one per node sized to its CPUs, or ``workers`` of equal
CPU shares. Work moves as file paths: every input, output and work folder must be on storage
every node sees at the same path (checked once per run with a token file, ``Pool.check_storage``).

Durable progress lives in the work folders and outputs, never in Ray (the head is a single point
of failure): a worker that dies (kill -9, a lost node) has its unit resubmitted to another worker,
up to ``MAX_ATTEMPTS`` times, and the unit resumes from its finished frames; a driver that dies
takes its actors with it, and the same command again skips finished jobs and resumes the rest.
A user error (a bad input) is not retried: it fails its job, and the other jobs run.

Ray is imported only inside these functions: without the ``ray`` extra, ``require_ray`` raises a
ClusterError naming ``pip install "dreamvideo[ray]"``. The library never prints: events and notes
go to ``on_event``/``on_note``, frames done over frames planned (the whole cluster) to
``on_progress(done, total)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ClusterError, DreamVideoError, OutputError

RAY_HINT = 'pip install "dreamvideo[ray]"'
MODES = ("auto", "local")  # besides a HOST:PORT address
MAX_ATTEMPTS = 3  # a unit whose worker died this many times fails (a rerun resumes it)
START_TIMEOUT = 300.0  # seconds to wait for workers to start (imports TensorFlow) before giving up on them
POLL = 0.5  # seconds between progress polls while units run
SETUP_ENV = "DREAMVIDEO_WORKER_SETUP"  # "module:function" each worker calls once at start (register models)

EventFn = Callable[[str], None]
ProgressFn = Callable[[int, "int | None"], None]


def _noop(*_: Any) -> None:
    pass


def require_ray() -> Any:
    """The ray module, or ClusterError (one line naming the extra to install)."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"Ray is not installed, and --ray/--segments need it: {RAY_HINT}") from None
    return ray


# --- units of work and their results -------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One piece of work for a worker; everything in it is plain data and paths."""

    key: str  # unique within a run: "2" for job 2, "2/1" for its second segment, "2/join" for its assembly
    kind: str  # "job" (a batch job), "video" (a whole video), "segment", "assemble"
    payload: tuple  # the arguments of that kind (see Worker.run)
    frames: int  # frames it dreams, for the progress bar (0: not counted, e.g. an assembly)
    label: str  # how events name it: '[2/3] beach segment 1/3'
    what: str = ""  # what it does, for the line that says where it started ('video in.mp4 -> out/b.mp4')


@dataclass
class UnitResult:
    """What a worker returned for a unit (user errors and bugs included: never raised through Ray)."""

    ok: bool  # False when the unit failed
    value: Any = None  # the unit's return value (JobOutcome, RenderResult, RangeResult)
    error: str | None = None  # one line when it failed
    error_type: str | None = None  # the exception's class name (a dreamvideo.errors name for user errors)
    where: str = ""  # the worker that ran it
    seconds: float = 0.0  # wall time on the worker
    load_seconds: float = 0.0  # of which loading the model (0 once the worker has it)


def _call_setup(setup: str | None) -> None:
    if not setup:
        return
    module, _, name = setup.partition(":")
    try:
        getattr(importlib.import_module(module), name or "setup")()
    except Exception as err:  # noqa: BLE001 - a broken hook is a user error, said in one line
        raise ClusterError(f"{SETUP_ENV}={setup!r} failed on a worker: {type(err).__name__}: {err}") from None


class Worker:
    """The Ray actor that renders: created by ``connect``, one process per GPU or CPU share."""

    def __init__(self, number: int, threads: int | None, gpu: bool, setup: str | None, tracker: Any):
        import ray

        if threads:
            # Before TensorFlow starts: its thread pools read these once (and oneDNN reads OMP).
            for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
                os.environ[var] = str(threads)
            os.environ["TF_NUM_INTEROP_THREADS"] = str(min(threads, 2))
        from .model import import_tensorflow

        tf = import_tensorflow()
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
            import cv2

            cv2.setNumThreads(threads)
        if gpu:
            for device in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(device, True)
        _call_setup(setup)
        ctx = ray.get_runtime_context()
        self.node_id = ctx.get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.label = f"{self.ip} ({self.node_id[:8]}) worker {number}"
        self.tracker = tracker
        self.threads = threads
        self.loaded: set[tuple] = set()

    def info(self) -> dict[str, Any]:
        """Where this worker runs."""
        return {
            "label": self.label,
            "node_id": self.node_id,
            "ip": self.ip,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": self.threads,
        }

    def sees(self, folder: str, name: str, token: str) -> bool:
        """True if ``folder/name`` holds ``token``: this node sees the driver's storage at the same path."""
        try:
            return (Path(folder) / name).read_text() == token
        except OSError:
            return False

    def _load(self, settings: Any) -> float:
        """Build the engine for these settings now (timed), so load time is reported apart."""
        from .dream import get_engine

        d = settings.dream
        key = (d.model, d.weights, d.layers, d.loss)
        if key in self.loaded:
            return 0.0
        t0 = time.perf_counter()
        get_engine(d)
        self.loaded.add(key)
        return time.perf_counter() - t0

    def run(self, unit: Unit) -> UnitResult:
        """Do one unit; its progress and notes go to the tracker, its errors into the result."""
        from . import batch, render, segments

        t0 = time.perf_counter()
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.perf_counter()
            if now - last[0] >= 0.25 or (total is not None and done >= total):
                last[0] = now
                self.tracker.update.remote(unit.key, done, total)

        def note(message: str) -> None:
            self.tracker.note.remote(unit.key, message)

        load = 0.0
        try:
            if unit.kind == "job":
                job, manifest, command, split, results, where = unit.payload
                load = self._load(job.settings)
                assembly = None
                if split is not None:
                    assembly = functools.partial(_assemble_job, split, results, where)
                value = batch.run_job(job, manifest, command, on_note=note, on_progress=progress, render=assembly)
            elif unit.kind == "video":
                input, output, settings, command, report = unit.payload
                load = self._load(settings)
                value = render.render_video(
                    input,
                    output,
                    settings,
                    command=command,
                    on_progress=progress,
                    on_note=note,
                    resume=True,
                    report=report,
                )
            elif unit.kind == "segment":
                split, segment = unit.payload
                load = self._load(split.settings)
                value = segments.render_segment(split, segment, on_progress=progress, on_note=note)
            elif unit.kind == "assemble":
                split, results, where, command = unit.payload
                value = segments.assemble(
                    split, results, command=command, on_progress=progress, on_note=note, where=where
                )
            else:  # pragma: no cover - a developer error
                raise ValueError(f"unknown unit kind {unit.kind!r}")
        except DreamVideoError as err:
            return UnitResult(
                False,
                error=_one_line(err),
                error_type=type(err).__name__,
                where=self.label,
                seconds=time.perf_counter() - t0,
                load_seconds=load,
            )
        except Exception as err:  # noqa: BLE001 - a bug fails its unit, not the night
            text = traceback.format_exc(limit=8).strip().splitlines()
            return UnitResult(
                False,
                error=f"{type(err).__name__}: {_one_line(err)} ({text[-3].strip()})",
                error_type=type(err).__name__,
                where=self.label,
                seconds=time.perf_counter() - t0,
                load_seconds=load,
            )
        return UnitResult(True, value=value, where=self.label, seconds=time.perf_counter() - t0, load_seconds=load)


def _assemble_job(
    split: Any,
    results: Sequence[Any],
    where: Sequence[str],
    job: Any,
    manifest: Any,
    command: str,
    on_note: Callable[[str], None],
    on_progress: ProgressFn,
) -> Any:
    """batch.run_job's renderer for a split video job: join its finished segments."""
    from .segments import assemble

    record = {"batch": {"manifest": str(manifest.path), "job": job.name, "index": job.index}}
    return assemble(
        split, results, command=command, on_progress=on_progress, on_note=on_note, where=where, record=record
    )


def _frames_text(seg: Any) -> str:
    """'frames 40-end (10 preroll)', what a segment dreams."""
    end = "end" if seg.stop is None else str(seg.stop - 1)
    return f"frames {seg.first}-{end}" + (f" ({seg.preroll} preroll)" if seg.preroll else "")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class Tracker:
    """A small actor the workers report progress and notes to; the driver polls it."""

    def __init__(self) -> None:
        self.progress: dict[str, tuple[int, int | None]] = {}
        self.notes: list[tuple[str, str]] = []

    def update(self, key: str, done: int, total: int | None) -> None:
        self.progress[key] = (int(done), total)

    def note(self, key: str, text: str) -> None:
        self.notes.append((key, text))

    def snapshot(self) -> tuple[dict[str, tuple[int, int | None]], list[tuple[str, str]]]:
        notes, self.notes = self.notes, []
        return dict(self.progress), notes


# --- the pool -------------------------------------------------------------------------------------


@dataclass
class _Slot:
    handle: Any  # the actor
    options: dict[str, Any]  # how it was created (a replacement gets the same)
    number: int  # 1-based
    label: str = ""  # filled once it answered
    info: dict[str, Any] = field(default_factory=dict)


class Pool:
    """Started workers on a Ray cluster; ``run`` feeds them units. Create with ``connect``."""

    def __init__(self, ray: Any, slots: list[_Slot], tracker: Any, args: tuple, on_event: EventFn):
        self.ray = ray
        self.slots = slots  # workers that answered
        self.tracker = tracker
        self._args = args  # (threads, gpu, setup) for replacements
        self._on_event = on_event
        self._next_number = len(slots) + 1
        self.load_seconds: list[float] = []  # model loads, one entry per (worker, model)

    @property
    def workers(self) -> list[str]:
        """The live workers' labels."""
        return [s.label for s in self.slots]

    @property
    def nodes(self) -> int:
        """Distinct nodes the workers are on."""
        return len({s.info.get("node_id") for s in self.slots})

    def check_storage(self, folder: Path) -> None:
        """ClusterError (one line) unless every worker sees ``folder`` at the same path as the driver."""
        folder = Path(os.path.abspath(folder))
        name = f".dreamvideo-check-{uuid.uuid4().hex[:12]}"
        token = uuid.uuid4().hex
        try:
            (folder / name).write_text(token)
        except OSError as err:
            raise ClusterError(
                f"cannot write in {str(folder)!r} ({err.strerror}): the cluster's work is shared "
                "through files, so the folder must be writable"
            ) from None
        try:
            seen = self.ray.get([s.handle.sees.remote(str(folder), name, token) for s in self.slots])
        finally:
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        for slot, ok in zip(self.slots, seen):
            if not ok:
                raise ClusterError(
                    f"the worker on {slot.info.get('host', '?')} ({slot.label}) cannot see {str(folder)!r}: inputs, "
                    "outputs and work folders must be on storage every node mounts at the same path (e.g. NFS); "
                    "mount it there, or use --ray local"
                )

    def _replace(self, slot: _Slot) -> tuple[Any, _Slot]:
        """A new actor like a dead one (same resources, soft affinity to the same node)."""
        actor = self.ray.remote(Worker).options(**slot.options)
        threads, gpu, setup = self._args
        number = self._next_number
        self._next_number += 1
        handle = actor.remote(number, threads, gpu, setup, self.tracker)
        new = _Slot(handle, slot.options, number)
        return handle.info.remote(), new

    def run(
        self,
        units: Iterable[Unit],
        *,
        on_event: EventFn = _noop,
        on_progress: ProgressFn = _noop,
        follow: Callable[[Unit, UnitResult], list[Unit]] | None = None,
        skip: Callable[[Unit], bool] | None = None,
    ) -> Iterator[tuple[Unit, UnitResult]]:
        """Run units on the workers as they free up; yield (unit, result) as each finishes.

        follow(unit, result): units that may start now (a split video's assembly after its last
        segment). skip(unit): True drops a queued unit (its job already failed). A unit whose worker
        died runs again elsewhere (up to MAX_ATTEMPTS); the dead worker is replaced when it can be.
        """
        ray = self.ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        ready: deque[Unit] = deque(units)
        planned = {u.key: u.frames for u in ready}
        done_frames: dict[str, int] = {}
        finished: set[str] = set()
        idle: deque[_Slot] = deque(self.slots)
        inflight: dict[Any, tuple[Unit, _Slot]] = {}
        starting: dict[Any, _Slot] = {}
        attempts: dict[str, int] = {}
        labels = {u.key: u.label for u in ready}
        waited_alone = 0.0

        def report() -> None:
            try:
                progress, notes = ray.get(self.tracker.snapshot.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a lost tracker only costs the bar, never the work
                return
            for key, text in notes:
                on_event(f"{labels.get(key, key)}: note: {text}")
            for key, (done, total) in progress.items():
                if key in finished or not planned.get(key):
                    continue  # finished, or not counted (an assembly dreams nothing)
                done_frames[key] = done
                if total:
                    planned[key] = max(planned[key], int(total))
            on_progress(sum(done_frames.values()), sum(planned.values()))

        while ready or inflight:
            while ready and idle:
                unit = ready.popleft()
                if skip is not None and skip(unit):
                    planned.pop(unit.key, None)
                    continue
                slot = idle.popleft()
                inflight[slot.handle.run.remote(unit)] = (unit, slot)
                on_event(f"{unit.label}: {unit.what + ' ' if unit.what else ''}on {slot.label}")
            if not inflight:
                if ready and starting and waited_alone < START_TIMEOUT:
                    pass  # no worker free yet: wait for a replacement to start
                elif ready:
                    for unit in list(ready):
                        yield (
                            unit,
                            UnitResult(
                                False,
                                error="no Ray worker is left to run it: check the cluster "
                                "(`ray status`) and run the same command again",
                                error_type="ClusterError",
                            ),
                        )
                    return
            waiting = list(inflight) + list(starting)
            t0 = time.perf_counter()
            done, _ = ray.wait(waiting, num_returns=1, timeout=POLL)
            if not inflight:
                waited_alone += time.perf_counter() - t0
            report()
            for ref in done:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        slot.info = ray.get(ref)
                        slot.label = slot.info["label"]
                        self.slots.append(slot)
                        idle.append(slot)
                        waited_alone = 0.0
                    except Exception:  # noqa: BLE001 - it could not start: run with the others
                        pass
                    continue
                unit, slot = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except (RayActorError, WorkerCrashedError) as err:
                    n = attempts[unit.key] = attempts.get(unit.key, 0) + 1
                    if slot in self.slots:
                        self.slots.remove(slot)
                    info_ref, new = self._replace(slot)
                    starting[info_ref] = new
                    reason = _one_line(err).split(". ")[0][:160]
                    if n < MAX_ATTEMPTS:
                        on_event(
                            f"{unit.label}: the worker {slot.label} died ({reason}); running it again, "
                            f"from its finished frames"
                        )
                        ready.appendleft(unit)
                        continue
                    result = UnitResult(
                        False,
                        error=f"its worker died {n} times (last: {reason}); run the same command again to resume",
                        error_type="ClusterError",
                        where=slot.label,
                    )
                else:
                    idle.append(slot)
                    if result.load_seconds > 0:
                        self.load_seconds.append(result.load_seconds)
                finished.add(unit.key)
                if planned.get(unit.key):
                    done_frames[unit.key] = planned[unit.key]
                for extra in follow(unit, result) if follow is not None else []:
                    ready.append(extra)
                    planned[extra.key] = extra.frames
                    labels[extra.key] = extra.label
                yield unit, result
        report()

    def close(self) -> None:
        """Stop the workers (the cluster itself stays up)."""
        for slot in self.slots:
            with contextlib.suppress(Exception):
                self.ray.kill(slot.handle)
        with contextlib.suppress(Exception):
            self.ray.kill(self.tracker)


def _python_path() -> str:
    """PYTHONPATH for a local cluster's workers: this dreamvideo copy first, then the caller's path."""
    here = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return here + (os.pathsep + rest if rest else "")


def _init(ray: Any, address: str, temp_dir: str | None) -> bool:
    """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    try:
        if address == "local":
            ray.init(
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",  # a Ray of this run alone: loopback only, no open port outside
                object_store_memory=256 * 2**20,
                runtime_env={"env_vars": {"PYTHONPATH": _python_path()}},
                _temp_dir=temp_dir,
                **quiet,
            )
        else:
            host = address.rsplit(":", 1)[0] if ":" in address else ""
            if host.startswith("127."):  # a cluster on this machine's loopback: this driver's node is there too
                quiet["_node_ip_address"] = host
            ray.init(address=address, **quiet)
    except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, by version
        where = "on this machine" if address == "auto" else f"at {address!r}"
        raise ClusterError(
            f"cannot reach a Ray cluster {where} ({_one_line(err)[:160]}): start one with "
            "`ray start --head` (then `ray start --address HEAD:6379` on the others), or use "
            "--ray local"
        ) from None
    return True


def _worker_options(ray: Any, workers: int | None, threads: int | None) -> list[tuple[dict[str, Any], int | None]]:
    """(actor options, threads) per worker: one per GPU, else one per node with its CPUs, else equal shares."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    base = {"max_restarts": 0}  # a dead worker is replaced by the driver, its unit resubmitted (Pool.run)
    if gpus:
        return [({**base, "num_gpus": 1, "num_cpus": 1}, threads) for _ in range(workers or gpus)]
    if workers is None:
        out = []
        for node in ray.nodes():
            cpus = node.get("Resources", {}).get("CPU", 0)
            if node.get("Alive") and cpus >= 1:
                strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=True)
                out.append(({**base, "num_cpus": cpus, "scheduling_strategy": strategy}, threads or int(cpus)))
        return out
    share = max(float(resources.get("CPU", 1)) / workers, 0.01)
    return [
        ({**base, "num_cpus": share, "scheduling_strategy": "SPREAD"}, threads or max(int(share), 1))
        for _ in range(workers)
    ]


@contextlib.contextmanager
def connect(
    address: str = "local",
    *,
    workers: int | None = None,
    threads: int | None = None,
    setup: str | None = None,
    temp_dir: str | None = None,
    on_event: EventFn = _noop,
) -> Iterator[Pool]:
    """Connect to a Ray cluster (``auto``, ``HOST:PORT``) or start one here (``local``), start the workers,
    yield the Pool; stop the workers (and a Ray started here) on the way out.

    workers: how many (default: one per GPU, else one per node with all its CPUs); threads: pin each
    worker's TensorFlow/OpenCV threads (default: its CPU share); setup: "module:function" each worker
    calls once (default: $DREAMVIDEO_WORKER_SETUP), e.g. to register your own models.
    """
    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be at least 1, got {workers}")
    if address not in MODES and ":" not in address:
        raise ClusterError(f"--ray {address!r} is not auto, local or HOST:PORT: e.g. --ray auto, --ray 10.0.0.5:6379")
    if address == "local":
        # A Ray of this run alone stays on loopback: without this Ray swaps 127.0.0.1 for the
        # machine's network address (its multi-node default), read once when ray is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()
    started = _init(ray, address, temp_dir)
    pool = None
    try:
        setup = setup if setup is not None else os.environ.get(SETUP_ENV)
        plans = _worker_options(ray, workers, threads)
        if not plans:
            raise ClusterError("the Ray cluster has no node with a CPU free: check `ray status`")
        gpu = "num_gpus" in plans[0][0]
        tracker = ray.remote(num_cpus=0)(Tracker).remote()
        slots = []
        for number, (options, n_threads) in enumerate(plans, 1):
            handle = ray.remote(Worker).options(**options).remote(number, n_threads, gpu, setup, tracker)
            slots.append(_Slot(handle, options, number))
        refs = {s.handle.info.remote(): s for s in slots}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=START_TIMEOUT)
        live = []
        for ref in ready:
            slot = refs[ref]
            try:
                slot.info = ray.get(ref)
            except Exception as err:  # noqa: BLE001
                cause = getattr(err, "cause", None) or err
                if isinstance(cause, ClusterError):
                    raise cause from None
                on_event(f"a worker could not start: {_one_line(err)[:200]}")
                continue
            slot.label = slot.info["label"]
            live.append(slot)
        for slot in slots:
            if slot not in live:
                with contextlib.suppress(Exception):
                    ray.kill(slot.handle)
        if not live:
            raise ClusterError(
                f"no worker started within {START_TIMEOUT:.0f} s on the Ray cluster "
                f"({ray.cluster_resources()}): check `ray status` and that dreamvideo is installed "
                "on every node"
            )
        live.sort(key=lambda s: s.number)
        pool = Pool(ray, live, tracker, (threads, gpu, setup), on_event)
        yield pool
    finally:
        if pool is not None:
            pool.close()
        if started:
            ray.shutdown()


# --- drivers: a batch, a video ----------------------------------------------------------------------


def batch_executor(pool: Pool, segments: int = 1) -> Callable[..., Iterator[Any]]:
    """A batch.run_batch executor that runs the jobs across the pool: video jobs split in ``segments``,
    or in their own ``segments`` setting where a job sets one above 1."""

    def execute(
        jobs: list[Any], manifest: Any, command: str, on_event: EventFn, on_progress: ProgressFn
    ) -> Iterator[Any]:
        from .batch import JobOutcome, append_log, estimate, job_tag, job_what
        from .segments import make_plan

        pool.check_storage(manifest.path.parent)
        units: list[Unit] = []
        splits: dict[int, tuple[Any, dict[int, Any], dict[int, str]]] = {}
        by_index = {job.index: job for job in jobs}
        failed: set[int] = set()
        for job in jobs:
            tag = job_tag(job, manifest)
            count = segments  # the batch's --segments, unless the job sets its own
            if job.kind == "video" and job.settings.video.segments > 1:
                count = job.settings.video.segments
            if count > 1 and job.kind == "video":
                try:
                    try:
                        job.output.parent.mkdir(parents=True, exist_ok=True)  # as batch's own renderer does
                    except OSError as err:
                        raise OutputError(
                            f"cannot create the folder {str(job.output.parent)!r} ({err.strerror}): "
                            "choose an output in a folder you can write to"
                        ) from None
                    split = make_plan(job.input, job.target, job.settings, count)
                except DreamVideoError as err:
                    append_log(manifest, job, f"FAILED: {_one_line(err)}")
                    yield JobOutcome(job, "failed", reason=_one_line(err))
                    continue
                splits[job.index] = (split, {}, {})
                for seg in split.segments:
                    units.append(
                        Unit(
                            f"{job.index}/{seg.index}",
                            "segment",
                            (split, seg),
                            max(seg.frames_planned(split.total), 1),
                            f"{tag} segment {seg.name}",
                            _frames_text(seg),
                        )
                    )
                continue
            if segments > 1 and job.kind == "zoom":
                on_event(
                    f"{tag}: note: a zoom cannot be split into segments (each frame is dreamed from the one "
                    "before): it runs whole, on one worker"
                )
            frames = 1
            with contextlib.suppress(DreamVideoError, OSError, ValueError):
                frames = estimate(job)[0] or 1
            units.append(
                Unit(str(job.index), "job", (job, manifest, command, None, None, None), frames, tag, job_what(job))
            )

        def follow(unit: Unit, result: UnitResult) -> list[Unit]:
            if unit.kind != "segment" or not result.ok:
                return []
            index = int(unit.key.split("/")[0])
            split, results, where = splits[index]
            seg = unit.payload[1]
            results[seg.index], where[seg.index] = result.value, result.where
            if len(results) < len(split.segments) or index in failed:
                return []
            job = by_index[index]
            ordered = [results[k] for k in range(len(split.segments))]
            wheres = [where[k] for k in range(len(split.segments))]
            return [
                Unit(
                    f"{index}/join",
                    "job",
                    (job, manifest, command, split, ordered, wheres),
                    0,
                    f"{job_tag(job, manifest)} join",
                )
            ]

        def skip(unit: Unit) -> bool:
            return unit.kind == "segment" and int(unit.key.split("/")[0]) in failed

        for unit, result in pool.run(units, on_event=on_event, on_progress=on_progress, follow=follow, skip=skip):
            index = int(unit.key.split("/")[0])
            job = by_index[index]
            if unit.kind == "segment":
                if result.ok or index in failed:
                    continue
                failed.add(index)
                reason = f"segment {unit.payload[1].name}: {result.error}"
                append_log(manifest, job, f"FAILED: {reason} (on {result.where})")
                yield JobOutcome(job, "failed", seconds=result.seconds, reason=reason, where=result.where or None)
                continue
            if result.ok:
                outcome = result.value
            else:  # the worker itself failed around run_job (it died, or a bug outside the job)
                append_log(manifest, job, f"FAILED: {result.error}")
                outcome = JobOutcome(job, "failed", seconds=result.seconds, reason=result.error)
            where = result.where
            if index in splits:
                names = sorted(set(splits[index][2].values()))
                where = f"{len(splits[index][0].segments)} segments on {', '.join(names)}"
            yield dataclasses.replace(outcome, where=where or None)

    return execute


def render_video(
    pool: Pool,
    input: str | Path,
    output: str | Path,
    settings: Any,
    *,
    segments: int = 1,
    command: str | None = None,
    on_progress: ProgressFn = _noop,
    on_note: EventFn = _noop,
    resume: bool = True,
    report: bool = False,
) -> Any:
    """Render one video on the pool: whole on one worker, or split in ``segments`` run in parallel and
    joined. Returns render.RenderResult; raises the unit's error type (one line) when it fails.
    ``report``: also write the --report figure beside the output (render.render_video's)."""
    import shutil

    from . import errors
    from .probe import probe, require_moving_video
    from .render import estimate_frames
    from .resume import work_dir_for
    from .segments import make_plan, segments_dir
    from .toolkit import VIDEO_KINDS, OutputTarget, output_target

    input = Path(os.path.abspath(input))
    info = require_moving_video(probe(input))
    target = output_target(output, [input], allowed=VIDEO_KINDS, crf=settings.encode.crf)
    target = OutputTarget(Path(os.path.abspath(target.path)), target.kind)  # workers may run elsewhere
    output = target.path
    pool.check_storage(output.parent)
    name = output.name
    if segments <= 1:
        if not resume:
            shutil.rmtree(work_dir_for(output), ignore_errors=True)
        units = [
            Unit(
                "video", "video", (input, target, settings, command, report), estimate_frames(info, settings) or 1, name
            )
        ]
        follow = None
    else:
        if not resume:
            shutil.rmtree(segments_dir(output), ignore_errors=True)
        split = make_plan(input, target, settings, segments, report=report)
        results: dict[int, Any] = {}
        where: dict[int, str] = {}
        units = [
            Unit(
                f"s{seg.index}",
                "segment",
                (split, seg),
                max(seg.frames_planned(split.total), 1),
                f"{name} segment {seg.name}",
                _frames_text(seg),
            )
            for seg in split.segments
        ]

        def follow(unit: Unit, result: UnitResult) -> list[Unit]:
            if unit.kind != "segment" or not result.ok:
                return []
            seg = unit.payload[1]
            results[seg.index], where[seg.index] = result.value, result.where
            if len(results) < len(split.segments):
                return []
            ordered = [results[k] for k in range(len(split.segments))]
            wheres = [where[k] for k in range(len(split.segments))]
            return [Unit("join", "assemble", (split, ordered, wheres, command), 0, f"{name} join")]

    final = None
    failed: list[UnitResult] = []
    for unit, result in pool.run(
        units, on_event=on_note, on_progress=on_progress, follow=follow, skip=lambda u: bool(failed)
    ):
        if not result.ok:
            failed.append(result)
            continue
        if unit.kind in ("video", "assemble"):
            final = result.value
    if failed:
        kind = getattr(errors, failed[0].error_type or "", None)
        kind = kind if isinstance(kind, type) and issubclass(kind, DreamVideoError) else ClusterError
        raise kind(failed[0].error)
    assert final is not None
    return final


__all__ = [
    "MODES",
    "Pool",
    "RAY_HINT",
    "Unit",
    "UnitResult",
    "Worker",
    "batch_executor",
    "connect",
    "render_video",
    "require_ray",
]
