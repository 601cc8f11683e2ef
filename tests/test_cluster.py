"""Rendering on many machines with Ray: a real two-node cluster on loopback, workers killed, drivers killed,
a video split into segments and joined, and a one-line error without the extra.

The cluster tests start their own cluster once per module (a head and a second node joined with
`ray start --address`, one CPU each, loopback (127.0.0.2) only, a fresh --temp-dir) and always stop it with
`ray stop --force`. Their drivers are the real CLI in subprocesses (tests/cluster_driver.py registers
the tiny model there, and DREAMVIDEO_WORKER_SETUP on every worker). Tiny frames, one step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.batch import load_manifest, run_batch
from dreamvideo.cli import app
from dreamvideo.config import Settings, merge
from dreamvideo.decode import iter_frames
from dreamvideo.errors import ClusterError, ConfigError
from dreamvideo.probe import probe
from dreamvideo.resume import work_dir_for
from dreamvideo.segments import Segment, plan, render_split, segments_dir
from helpers import MEDIA, ffmpeg, make_clip, need

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "cluster_driver.py"
runner = CliRunner()

JOB_DEFAULTS = """
[defaults]
model = "tiny"
steps = 1
octaves = 1
[defaults.video]
warm_steps = 1
flow = "dis-fast"
[defaults.encode]
encoder_preset = "ultrafast"
"""


# --- without a cluster -----------------------------------------------------------------------------


def test_plan_balances_work_and_covers_every_frame_once():
    segs = plan(100, 3, preroll=10, join=5)
    assert [s.first for s in segs][0] == 0 and segs[-1].stop is None
    for a, b in zip(segs, segs[1:]):
        assert a.stop == b.first + 5  # overlap = join
        assert b.start == b.first - 10  # preroll
    work = [s.frames_planned(100) for s in segs]
    assert max(work) - min(work) <= 1, work  # equal work per segment, prerolls and joins counted
    assert plan(100, 1, 10, 5) == [Segment(0, 1, 0, 0, None)]
    with pytest.raises(ConfigError, match="fewer segments"):
        plan(30, 8, preroll=10, join=5)


def test_split_render_here_keeps_frames_fps_and_audio(tmp_path):
    """The segmented path without Ray: same frame count, exact fps and sound as a plain render; no leftovers."""
    clip = make_clip(tmp_path / "in.mp4", seconds=2.4, fps="24000/1001", size="64x48", audio=True)
    s = merge(
        Settings(),
        {
            "model": "tiny",
            "steps": 1,
            "octaves": 1,
            "warm_steps": 1,
            "preroll": 0.3,
            "join": 0.2,
            "encoder_preset": "ultrafast",
        },
        source="test",
    )
    result = render_split(clip, tmp_path / "out.mp4", s, 3)
    src, out = probe(clip), probe(tmp_path / "out.mp4")
    assert result.frames == sum(1 for _ in iter_frames(clip)) == sum(1 for _ in iter_frames(tmp_path / "out.mp4"))
    assert out.fps == src.fps == Fraction(24000, 1001) and out.has_audio
    assert abs(out.duration - src.duration) < 0.1
    assert not segments_dir(tmp_path / "out.mp4").exists()
    doc = json.loads((tmp_path / "out.settings.json").read_text())
    assert len(doc["segments"]) == 3 and doc["frames"] == result.frames


def test_the_join_fades_at_the_pace_of_the_scene():
    from dreamvideo.segments import fade_weights

    even = fade_weights([2.0] * 5)  # 4 overlap frames
    assert even == pytest.approx([0.2, 0.4, 0.6, 0.8])  # the linear fade
    w = fade_weights([0.5, 0.5, 4.0, 0.5, 0.5])
    assert all(0 < a < b < 1 for a, b in zip(w, w[1:]))
    steps = np.diff([0.0, *w, 1.0])
    assert steps[2] > 3 * steps[0]  # the big move takes the big share of the change
    assert min(steps) > 0  # and the fade still advances while the scene is calm
    assert fade_weights([0.0] * 3) == pytest.approx([1 / 3, 2 / 3])  # a still scene: linear


def test_split_render_measures_and_reports_the_frames_it_wrote(tmp_path):
    """--report on a split render: the figure is written, and the flicker is that of the frames in the
    output, cross-faded joins included (not only each segment's own frames)."""
    from dreamvideo.decode import read_image

    clip = make_clip(tmp_path / "in.mp4", seconds=2.0, fps="10", size="64x48", audio=False)
    s = merge(
        Settings(),
        {"model": "tiny", "steps": 2, "octaves": 1, "warm_steps": 1, "preroll": 0.3, "join": 0.5, "flow": "dis-fast"},
        source="test",
    )
    out = tmp_path / "frames/"
    result = render_split(clip, out, s, 2, report=True)
    raw = list(iter_frames(clip))
    written = [read_image(p) for p in sorted((tmp_path / "frames").glob("*.png"))]
    assert len(written) == len(raw) == result.frames == 20
    rows = np.array(_flicker(written, raw, "dis-fast"))  # the render's own flow method
    assert result.metrics["flicker"] == pytest.approx(rows[:, 0].mean() / rows[:, 1].mean(), rel=1e-3)
    report = tmp_path / "frames.report.png"
    assert report.is_file() and read_image(report).shape[1] > 200
    doc = json.loads((tmp_path / "frames.settings.json").read_text())
    assert doc["report"] == str(report) and "scratch_strength" in doc["metrics"]


def test_a_zoom_job_asking_for_segments_is_a_clear_error(tmp_path):
    (tmp_path / "m.toml").write_text(
        JOB_DEFAULTS + '[[job]]\nkind = "zoom"\nnoise = true\nsegments = 3\noutput = "z.mp4"\n'
    )
    result = runner.invoke(app, ["batch", str(tmp_path / "m.toml"), "--dry-run"])
    assert result.exit_code == 1
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "cannot be split into segments" in line and "job 1" in line.lower(), line


def test_without_the_extra_ray_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    clip = make_clip(tmp_path / "in.mp4", seconds=0.3)
    (tmp_path / "m.toml").write_text(JOB_DEFAULTS + '[[job]]\nkind = "video"\ninput = "in.mp4"\noutput = "o.mp4"\n')
    for args in (
        ["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--ray", "auto"],
        ["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--segments", "2"],
        ["batch", str(tmp_path / "m.toml"), "--ray", "local"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and 'pip install "dreamvideo[ray]"' in lines[0], result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "o.mp4").exists()


def test_help_does_not_import_ray():
    code = (
        "import sys; from typer.testing import CliRunner; from dreamvideo.cli import app; "
        "r = CliRunner().invoke(app, ['video', '--help']); assert r.exit_code == 0 and '--segments' in r.output; "
        "sys.exit('ray' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0


def test_help_names_the_extra_to_install():
    for command in ("video", "batch"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0 and 'pip install "dreamvideo[ray]"' in result.output, result.output


def test_zoom_asking_for_segments_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["zoom", "-o", str(tmp_path / "z.mp4"), "--noise", "--segments", "2"])
    assert result.exit_code == 1
    assert "cannot be split into segments" in result.output and len(result.output.strip().splitlines()) == 1


def test_storage_check_names_the_worker_that_cannot_see(tmp_path):
    from dreamvideo.cluster import Pool, _Slot

    class Handle:
        def __init__(self, sees):
            self.sees = type("M", (), {"remote": staticmethod(lambda *a: sees)})()

    class FakeRay:
        @staticmethod
        def get(refs):
            return refs

    slots = [
        _Slot(Handle(True), {}, 1, "a worker 1", {"host": "a"}),
        _Slot(Handle(False), {}, 2, "b worker 2", {"host": "b"}),
    ]
    pool = Pool(FakeRay(), slots, None, (None, False, None), lambda _: None)
    with pytest.raises(ClusterError, match=r"worker on b .*cannot see .*same path"):
        pool.check_storage(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the token file is gone


# --- a real loopback cluster ------------------------------------------------------------------------


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    marker: str


# Ray swaps 127.0.0.1 (and localhost) for the machine's network address so other machines can join;
# another loopback address (127.0.0.0/8) is kept as given, so the whole test cluster stays on loopback.
LOOPBACK = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="dvray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
        "DVRAY_TEST": marker,
        "DREAMVIDEO_WORKER_SETUP": "tiny_model:register",
        "RAY_USAGE_STATS_ENABLED": "0",
        # Multi-node on one machine (conftest turns it off for the single-node Rays of other tests).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
        # Ray 2.60 turns token auth on for a head when ~/.ray/auth_token exists, but not for a node
        # joining it: give every process of this cluster the same fresh token explicitly.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    common = [
        "--num-cpus",
        "1",
        "--node-ip-address",
        LOOPBACK,
        "--object-store-memory",
        str(100 * 2**20),
        "--disable-usage-stats",
    ]

    def ray(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ray_cli, *args], env=env, capture_output=True, text=True, timeout=240)

    try:
        # Ray gives a raylet 30 s to register (not configurable): on a loaded machine, start over.
        for attempt in range(3):
            done = ray("start", "--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", temp, *common)
            if done.returncode == 0:
                done = ray("start", "--address", f"{LOOPBACK}:{port}", "--temp-dir", temp, *common)
            if done.returncode == 0:
                break
            ray("stop", "--force")
            if "timed out during startup" not in done.stderr + done.stdout or attempt == 2:
                raise AssertionError(f"ray start failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        yield Cluster(f"{LOOPBACK}:{port}", env, marker)
    finally:
        ray("stop", "--force")
        shutil.rmtree(temp, ignore_errors=True)


def _drive(cluster: Cluster, *args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DRIVER), *args], env=cluster.env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _start(cluster: Cluster, *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), *args],
        env=cluster.env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _workers(cluster: Cluster, busy: bool = False) -> list[int]:
    """PIDs of this cluster's worker actors (busy: those inside Worker.run)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if (
                not title.startswith("ray::Worker")
                or f"DVRAY_TEST={cluster.marker}".encode() not in (proc / "environ").read_bytes()
            ):
                continue
        except OSError:
            continue
        if not busy or title.startswith("ray::Worker.run"):
            pids.append(int(proc.name))
    return pids


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver ended before {what}: {proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _frames_done(output: Path) -> int:
    try:
        return int(json.loads((work_dir_for(output) / "state.json").read_text()).get("frames_done", 0))
    except (OSError, ValueError):
        return 0


def _facts(path: Path) -> tuple:
    info = probe(path)
    return sum(1 for _ in iter_frames(path)), info.fps, (info.width, info.height), info.has_audio


def _no_partials(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if "partial" in p.name]


def _manifest(folder: Path, jobs: list[tuple[str, str]], out: str = "out") -> Path:
    text = JOB_DEFAULTS + "".join(f'[[job]]\nkind = "video"\ninput = "{i}"\noutput = "{out}/{o}"\n' for i, o in jobs)
    path = folder / f"{out}.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_three_jobs_across_two_nodes_match_a_plain_run(cluster, tmp_path):
    make_clip(tmp_path / "a.mp4", seconds=0.8, fps="10", size="64x48", audio=True)
    make_clip(tmp_path / "b.mp4", seconds=0.6, fps="24000/1001", size="48x32", audio=False)
    make_clip(tmp_path / "c.mp4", seconds=0.5, fps="25", size="64x48", audio=True)
    jobs = [("a.mp4", "a.mp4"), ("b.mp4", "b.mp4"), ("c.mp4", "c.mp4")]
    ran = _drive(cluster, "batch", str(_manifest(tmp_path, jobs)), "--ray", cluster.address, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    nodes = set(re.findall(r"on [0-9.]+ \(([0-9a-f]{8})\) worker", ran.stdout))
    assert len(nodes) == 2, ran.stdout  # both nodes took jobs
    assert ran.stdout.count("done in") == 3
    plain = run_batch(load_manifest(_manifest(tmp_path, jobs, out="plain")))
    assert len(plain.done) == 3
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        assert _facts(tmp_path / "out" / name) == _facts(tmp_path / "plain" / name)
    assert _no_partials(tmp_path / "out") == []


@pytest.mark.slow
def test_batch_with_segments_splits_videos_and_runs_zooms_whole(cluster, tmp_path):
    make_clip(tmp_path / "v.mp4", seconds=3, fps="10", size="64x48", audio=True)
    text = _manifest(tmp_path, [("v.mp4", "v.mp4")]).read_text()
    text += '[[job]]\nkind = "zoom"\nnoise = true\nsize = "48x32"\nseconds = 0.5\nfps = 10\noutput = "out/z.mp4"\n'
    text = text.replace('flow = "dis-fast"', 'flow = "dis-fast"\npreroll = 0.5\njoin = 0.5')
    (tmp_path / "out.toml").write_text(text)
    ran = _drive(
        cluster, "batch", str(tmp_path / "out.toml"), "--ray", cluster.address, "--segments", "2", cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "segment 2/2" in ran.stdout and "2 segments on" in ran.stdout
    assert "a zoom cannot be split into segments" in ran.stdout
    frames, fps, _, audio = _facts(tmp_path / "out" / "v.mp4")
    assert frames == 30 and fps == 10 and audio
    assert _facts(tmp_path / "out" / "z.mp4")[0] == 5
    doc = json.loads((tmp_path / "out" / "v.settings.json").read_text())
    assert len(doc["segments"]) == 2 and doc["batch"]["job"] == "v"
    again = _drive(
        cluster, "batch", str(tmp_path / "out.toml"), "--ray", cluster.address, "--segments", "2", cwd=tmp_path
    )
    assert again.returncode == 0 and again.stdout.count("skipped") >= 2, again.stdout
    assert not segments_dir(tmp_path / "out" / "v.mp4").exists() and _no_partials(tmp_path / "out") == []


@pytest.mark.slow
def test_a_video_job_with_its_own_segments_is_split_on_the_cluster(cluster, tmp_path):
    make_clip(tmp_path / "v.mp4", seconds=2, fps="10", size="64x48", audio=True)
    make_clip(tmp_path / "w.mp4", seconds=0.5, fps="10", size="64x48", audio=False)
    text = JOB_DEFAULTS.replace('flow = "dis-fast"', 'flow = "dis-fast"\npreroll = 0.3\njoin = 0.5')
    text += '[[job]]\nkind = "video"\ninput = "v.mp4"\noutput = "out/v.mp4"\nsegments = 2\n'
    text += '[[job]]\nkind = "video"\ninput = "w.mp4"\noutput = "out/w.mp4"\n'
    (tmp_path / "m.toml").write_text(text)
    ran = _drive(cluster, "batch", str(tmp_path / "m.toml"), "--ray", cluster.address, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "segment 2/2" in ran.stdout and "2 segments on" in ran.stdout
    assert _facts(tmp_path / "out" / "v.mp4")[0] == 20 and _facts(tmp_path / "out" / "w.mp4")[0] == 5
    doc = json.loads((tmp_path / "out" / "v.settings.json").read_text())
    assert len(doc["segments"]) == 2 and doc["settings"]["video"]["segments"] == 2
    assert "segments" not in json.loads((tmp_path / "out" / "w.settings.json").read_text())


@pytest.mark.slow
def test_worker_killed_mid_render_the_job_completes_with_every_frame_once(cluster, tmp_path):
    make_clip(tmp_path / "long.mp4", seconds=6, fps="10", size="64x48", audio=True)
    output = tmp_path / "out" / "long.mp4"
    driver = _start(
        cluster,
        "batch",
        str(_manifest(tmp_path, [("long.mp4", "long.mp4")])),
        "--ray",
        cluster.address,
        "--workers",
        "2",
        cwd=tmp_path,
    )
    try:
        _wait_for(lambda: _frames_done(output) >= 5, 240, "5 finished frames", driver)
        busy = _workers(cluster, busy=True)
        assert len(busy) == 1
        os.kill(busy[0], signal.SIGKILL)
        out, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out
    assert "died" in out and "running it again" in out
    frames = list(iter_frames(output))
    assert len(frames) == 60 and probe(output).has_audio
    # Every frame once, in place: frame by frame the same as an uninterrupted plain run's.
    plain = run_batch(load_manifest(_manifest(tmp_path, [("long.mp4", "long.mp4")], out="plain")))
    assert len(plain.done) == 1
    diffs = [
        float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
        for a, b in zip(frames, iter_frames(tmp_path / "plain" / "long.mp4"))
    ]
    assert len(diffs) == 60 and max(diffs) < 1.0 and float(np.mean(diffs)) < 0.3, [round(d, 2) for d in diffs]
    assert _no_partials(tmp_path / "out") == [] and not work_dir_for(output).exists()


@pytest.mark.slow
def test_driver_killed_mid_batch_then_rerun_skips_and_resumes(cluster, tmp_path):
    make_clip(tmp_path / "short.mp4", seconds=0.5, fps="10", size="64x48")
    make_clip(tmp_path / "long.mp4", seconds=20, fps="10", size="64x48")
    manifest = _manifest(tmp_path, [("short.mp4", "short.mp4"), ("long.mp4", "long.mp4")])
    long_out = tmp_path / "out" / "long.mp4"
    driver = _start(cluster, "batch", str(manifest), "--ray", cluster.address, cwd=tmp_path)
    try:
        _wait_for(
            lambda: (tmp_path / "out" / "short.mp4").exists() and _frames_done(long_out) >= 5,
            240,
            "the short job done and 5 frames of the long one",
            driver,
        )
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    _wait_for(lambda: not _workers(cluster), 120, "the dead driver's workers to stop")
    kept = _frames_done(long_out)
    assert kept >= 5 and not long_out.exists()
    again = _drive(cluster, "batch", str(manifest), "--ray", cluster.address, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"\[1/2\] short: skipped", again.stdout), again.stdout
    resumed = re.search(r"\[2/2\] long: done in .* (\d+) frames resumed", again.stdout)
    assert resumed and int(resumed.group(1)) >= 5, again.stdout
    assert sum(1 for _ in iter_frames(long_out)) == 200


def _flicker(out: list[np.ndarray], raw: list[np.ndarray], method: str = "dis-medium") -> list[tuple[float, float]]:
    """Per step t-1 -> t: occlusion-masked mean |out_t - warp(out_t-1)| and the same on the input."""
    from dreamvideo.flow import FlowEstimator, coherence, warp

    est = FlowEstimator(method)
    rows = []
    for t in range(1, len(out)):
        flow_bw, mask, _ = coherence(raw[t], raw[t - 1], est)
        m = mask[..., None]
        w = float(m.sum()) * 3 + 1e-6
        o, r = out[t].astype(np.float32), raw[t].astype(np.float32)
        rows.append(
            (
                float((np.abs(o - warp(out[t - 1].astype(np.float32), flow_bw)) * m).sum() / w),
                float((np.abs(r - warp(raw[t - 1].astype(np.float32), flow_bw)) * m).sum() / w),
            )
        )
    return rows


@pytest.mark.slow
def test_segmented_render_of_a_real_clip_joins_smoothly(cluster, tmp_path, inception_weights):
    """Two segments of 8 s of real pedestrians on two workers, at the default preroll and join.

    The step of a frame is mean |frame_t - frame_t-1|. vtest's own steps jump about 2x every few
    frames (its encoder), so an unsplit render already has steps 1.5-2.1x its median inside a join's
    window (bench/bench_joins.py): the seam's step is measured over the input's step at the same
    frame, against the median of that ratio over the rest of the video.
    """
    clip = tmp_path / "street.mp4"
    ffmpeg(
        "-i",
        str(need(MEDIA / "vtest.avi")),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=8",
        "-t",
        "8",
        "-vf",
        "scale=128:-2",
        "-c:v",
        "libx264",
        "-crf",
        "12",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(clip),
    )
    output = tmp_path / "dreamed.mp4"
    ran = _drive(
        cluster,
        "video",
        str(clip),
        "-o",
        str(output),
        "--segments",
        "2",
        "--ray",
        cluster.address,
        "--weights",
        str(inception_weights),
        "--set",
        "model=inception_v3",
        "--crf",
        "4",  # the joins are measured, not the encoder: x264 at its default skips calm blocks then catches up
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    src, out = probe(clip), probe(output)
    raw, dreamed = list(iter_frames(clip)), list(iter_frames(output))
    assert len(dreamed) == len(raw) == 80 and out.fps == src.fps and out.has_audio
    assert abs(out.duration - src.duration) < 0.15
    doc = json.loads(output.with_name("dreamed.settings.json").read_text())
    assert len({s["where"] for s in doc["segments"]}) == 2  # the two segments ran on two workers
    join = doc["join_frames"]
    assert join == 30  # the default 3 s at 10 fps

    def steps(frames: list[np.ndarray]) -> list[float]:
        return [float(np.abs(b.astype(np.float32) - a.astype(np.float32)).mean()) for a, b in zip(frames, frames[1:])]

    floor = 0.25 * float(np.median(steps(raw)))  # a repeated input frame must not divide by ~0
    rel = [o / max(i, floor, 1e-3) for o, i in zip(steps(dreamed), steps(raw))]
    rows = np.array(_flicker(dreamed, raw))
    whole = rows[:, 0].mean() / rows[:, 1].mean()
    for seg in doc["segments"][1:]:
        b = seg["first"]
        inside = range(b - 1, b + join)  # steps into frames b .. b+join (index t-1 = step t-1 -> t)
        rest = np.median([s for i, s in enumerate(rel) if i not in inside])
        assert max(rel[i] for i in inside) <= 1.5 * rest, (b, [round(rel[i] / rest, 2) for i in inside])
        lo, hi = max(b - 4, 0), min(b + join + 3, len(rel))
        window = rows[lo:hi, 0].mean() / rows[lo:hi, 1].mean()
        assert window <= 1.2 * whole, (b, window, whole)
        # the metrics of the settings file are those of the frames written, joins included
        assert doc["metrics"]["flicker"] == pytest.approx(whole, rel=0.15)
    assert not segments_dir(output).exists() and _no_partials(tmp_path) == []
