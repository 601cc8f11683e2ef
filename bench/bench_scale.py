"""Benchmark scale-out: a batch and a segmented video with 1 Ray worker and with 2, in one run.

Run:  python bench/bench_scale.py [--jobs 4] [--job-frames 24] [--video-frames 400] [--size 128x96] [--quick]

Needs the ray extra (pip install -e ".[ray]"). One local Ray instance (2 CPUs here) is started for
the whole run; each measurement gets a fresh pool of workers, every worker pinned to ONE thread
(TensorFlow intra/inter-op, OpenCV, OMP), so 1 worker against 2 compares the same work per thread
and the ratio is the scale-out alone (on 2 cores, 2 threads is all the machine has).

- batch: ``--jobs`` video jobs of ``--job-frames`` frames (cuts of vtest.avi), run_batch through
  cluster.batch_executor; wall time of the whole batch, model loads included (each worker loads
  the model once, at its first job). Target: >= 1.8x with 2 workers.
- segmented video: one ``--video-frames`` clip; the baseline is the plain render on 1 worker
  (no segments: nothing extra to dream), against 2 segments on 2 workers, whose prerolls,
  joins and extra first frames are all counted in its wall time. Target: >= 1.6x. The same split
  on 1 worker is also timed: what the split costs without the parallelism.
- printed too: the preroll's share of the split's work (frames dreamed that are not output, over
  all frames dreamed), and the model-load time the long-lived actors saved against loading the
  model per job (loads measured in the batch run x (jobs - workers)).

- the machine's own ceiling, measured in the same run: two processes of single-threaded float32
  matmuls at once against one alone (no Ray, no dreamvideo). On a shared or hyper-threaded
  2-core machine two busy threads do not get twice the work done; each ratio above is also
  printed as a share of that ceiling.

Settings: the default preset with the benchmark's model (InceptionV3 with the shared weights,
else EfficientNet-Lite0), frames at --size; preroll and join at their defaults (seconds).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import default_settings, make_clip  # noqa: E402


def _manifest(folder: Path, clips: list[Path], settings_flat: dict, tag: str) -> Path:
    lines = ["[defaults]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in settings_flat.items()]
    for i, clip in enumerate(clips):
        lines += ["[[job]]", 'kind = "video"', f'input = "{clip}"', f'output = "{tag}/job{i}.mp4"']
    path = folder / f"{tag}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _matmuls(rounds: int = 60) -> float:
    """Seconds for a fixed single-threaded float32 matmul load (the ceiling's unit of work)."""
    import numpy as np

    a = np.random.default_rng(0).random((384, 384), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(rounds * 10):
        a = a @ a
        a /= np.abs(a).max()
    return time.perf_counter() - t0


def ceiling() -> float:
    """Throughput of 2 single-threaded processes at once over 1 alone (2.0 on 2 free cores)."""
    import multiprocessing

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the spawned processes before numpy loads there
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_matmuls, [5, 5])  # warm: imports and first allocations
        alone = pool.apply(_matmuls)
        t0 = time.perf_counter()
        pool.map(_matmuls, [60, 60])
        both = time.perf_counter() - t0
    return 2 * alone / both


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--job-frames", type=int, default=24)
    # 40 s: each join costs a fixed preroll + join (4 s at the defaults), so a short clip measures the
    # overhead more than the scale-out (the case is a 3-minute video)
    ap.add_argument("--video-frames", type=int, default=400)
    ap.add_argument("--size", default="128x96")
    ap.add_argument("--quick", action="store_true", help="2 jobs of 12 frames, a 100-frame video")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.job_frames, args.video_frames = 2, 12, 100
    w, h = (int(x) for x in args.size.split("x"))

    from dreamvideo import cluster
    from dreamvideo.batch import load_manifest, run_batch
    from dreamvideo.segments import make_plan

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (read when ray is imported)
    ray = cluster.require_ray()
    flat = {"max_side": max(w, h), "encoder_preset": "veryfast"}
    settings = default_settings(**flat)
    model_flat = {k: getattr(settings.dream, k) for k in ("model", "weights") if getattr(settings.dream, k)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    clips = [make_clip(w, h, args.job_frames, start_frame=100 + 60 * i) for i in range(args.jobs)]
    video = make_clip(w, h, args.video_frames, start_frame=20)
    print(
        f"model {settings.dream.model}, frames {w}x{h}, batch {args.jobs} x {args.job_frames} frames, "
        f"video {args.video_frames} frames at 10 fps; preroll {settings.video.preroll} s, "
        f"join {settings.video.join} s"
    )
    ray.init(
        num_cpus=os.cpu_count() or 2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",  # loopback only
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=256 * 2**20,
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}},
    )
    rows: dict[str, float] = {}
    loads: list[float] = []
    ceilings = [ceiling()]
    try:
        for n in (1, 2):
            with cluster.connect("local", workers=n, threads=1) as pool:
                manifest = load_manifest(_manifest(tmp, clips, {**flat, **model_flat}, f"batch{n}"))
                t0 = time.perf_counter()
                summary = run_batch(manifest, executor=cluster.batch_executor(pool))
                rows[f"batch, {n} worker(s)"] = time.perf_counter() - t0
                assert len(summary.done) == args.jobs, [o.reason for o in summary.failed]
                if n == 1:
                    loads = list(pool.load_seconds)
                if n == 1:  # the baseline: the whole video on one worker
                    t0 = time.perf_counter()
                    cluster.render_video(pool, video, tmp / "plain.mp4", settings, segments=1)
                    rows["video whole, 1 worker(s)"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                cluster.render_video(pool, video, tmp / f"split{n}.mp4", settings, segments=2)
                rows[f"video 2 segments, {n} worker(s)"] = time.perf_counter() - t0
    finally:
        ray.shutdown()
    ceilings.append(ceiling())
    top = sum(ceilings) / len(ceilings)
    split = make_plan(video, tmp / "probe.mp4", settings, 2)
    dreamed = split.frames_planned()
    print(f"{'measure':<32} {'seconds':>9}")
    for name, sec in rows.items():
        print(f"{name:<32} {sec:>9.1f}")
    batch_ratio = rows["batch, 1 worker(s)"] / rows["batch, 2 worker(s)"]
    video_ratio = rows["video whole, 1 worker(s)"] / rows["video 2 segments, 2 worker(s)"]
    split_ratio = rows["video 2 segments, 1 worker(s)"] / rows["video 2 segments, 2 worker(s)"]
    print(
        f"machine ceiling, 2 single-threaded processes vs 1 (before, after): {', '.join(f'{c:.2f}x' for c in ceilings)}"
    )
    print(f"batch speed-up, 2 workers vs 1: {batch_ratio:.2f}x (target >= 1.8; {batch_ratio / top:.0%} of the ceiling)")
    print(
        f"segmented video, 2 segments on 2 workers vs the whole video on 1: {video_ratio:.2f}x (target >= 1.6; "
        f"{video_ratio / top:.0%} of the ceiling)"
    )
    print(
        f"  the same 2-segment split on 2 workers vs on 1: {split_ratio:.2f}x ({split_ratio / top:.0%} of the ceiling)"
    )
    print(
        f"preroll share of the split's work: {dreamed - split.total} of {dreamed} frames dreamed are not output "
        f"({(dreamed - split.total) / dreamed:.1%}: prerolls {sum(s.preroll for s in split.segments)}, "
        f"joins {split.join * (len(split.segments) - 1)}), plus one extra first frame per segment after the first"
    )
    if loads:
        per = sum(loads) / len(loads)
        saved = per * max(args.jobs - 1, 0)
        print(
            f"model load per worker: {per:.1f} s; loading it per job instead would cost {args.jobs} loads: "
            f"the actor saved {saved:.1f} s of {rows['batch, 1 worker(s)']:.1f} s on 1 worker "
            f"({saved / rows['batch, 1 worker(s)']:.0%})"
        )


if __name__ == "__main__":
    main()
