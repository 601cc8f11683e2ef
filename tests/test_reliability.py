"""Reliability: damaged media, odd names, two renders at once, a work folder that lies, full disks,
hostile TOML. Each case checks what a user would: the exit status, exactly one error line and no
traceback, nothing stray left behind, and inputs unchanged (by hash)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.cli import app
from dreamvideo.config import Settings, merge
from dreamvideo.decode import DecodeStats, iter_frames
from dreamvideo.errors import (
    BusyError,
    ConfigError,
    DiskFullError,
    InputError,
    OutputError,
)
from dreamvideo.resume import WorkDir, input_identity, work_dir_for
from helpers import MEDIA, ffmpeg, make_clip, need

runner = CliRunner()
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TINY = {"model": "tiny", "steps": 1, "octaves": 1, "step_size": 0.05, "warm_steps": 1}
TINY_FLAGS = ["--model", "tiny", "--steps", "1", "--octaves", "1", "--set", "warm_steps=1", "--flow", "dis-fast"]
# The CLI in a child process, with the tiny test model registered (conftest) and this checkout first.
BOOT = (
    f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(REPO)!r}]; import conftest; "
    "from dreamvideo.cli import app; app()"
)


def tiny(**kw) -> Settings:
    return merge(Settings(), {**TINY, **kw}, "test")


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def error_lines(text: str) -> list[str]:
    """The lines a user reads on stderr, progress bar redraws removed."""
    lines = [ln for part in text.splitlines() for ln in part.split("\r")]
    return [ln for ln in lines if ln.strip() and not ln.startswith("dreaming")]


def assert_one_error(stderr: str, *needles: str) -> None:
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def listing(folder: Path) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}


# --- media: damaged clips, decoder chatter ------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """A 40-frame cut of the real pedestrian clip, and copies with bytes overwritten mid-file."""
    src = need(MEDIA / "vtest.avi")
    folder = tmp_path_factory.mktemp("reliability")
    clean = folder / "clean.mp4"
    ffmpeg(
        "-ss",
        "3",
        "-i",
        str(src),
        "-frames:v",
        "40",
        "-vf",
        "scale=192:144",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-pix_fmt",
        "yuv420p",
        str(clean),
    )
    out = {"clean": clean}
    data = clean.read_bytes()
    for name, size in (("patch512", 512), ("patch4k", 4096)):
        broken = bytearray(data)
        pos = int(len(data) * 0.7)  # inside the 3rd of 4 GOPs: good frames before and after the patch
        broken[pos : pos + size] = bytes((i * 37 + 11) % 256 for i in range(size))
        out[name] = folder / f"{name}.mp4"
        out[name].write_bytes(bytes(broken))
    return out


def _naive_count(path: Path) -> int:
    """Frames a plain read-until-failure loop gets (what decoding did before)."""
    from dreamvideo.probe import open_video_capture

    cap = open_video_capture(path)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("name", ["patch512", "patch4k"])
def test_corrupt_patch_mid_file_keeps_the_timeline(clips, name):
    """The frames after a damaged patch still decode; each broken one is the previous good frame repeated."""
    assert _naive_count(clips[name]) < 30  # the patch does stop a plain decoder mid-file
    stats = DecodeStats()
    frames = list(iter_frames(clips[name], stats=stats))
    assert abs(len(frames) - 40) <= 1, (len(frames), stats)  # the timeline holds (40 slots)
    assert stats.repeated >= 1 and stats.decoded + stats.repeated == len(frames)
    if name == "patch512":
        assert len(frames) == 40
    clean = list(iter_frames(clips["clean"]))

    def diff(a, b) -> float:
        return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())

    # The frames after the patch decoded, to the very last, in their own slots (the damage carries on
    # in them until the next keyframe, so "nearest" rather than "equal").
    tail = [diff(frames[-1], c) for c in clean[-5:]]
    assert int(np.argmin(tail)) == 4 and tail[-1] < 8.0, tail
    assert diff(frames[5], clean[5]) < 1.0  # and those before it are untouched


def test_corrupt_clip_renders_whole_with_a_warning_recorded_and_reported(clips, tmp_path):
    before = sha(clips["patch4k"])
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(clips["patch4k"]), "-o", str(out), *TINY_FLAGS, "--max-side", "64"])
    assert result.exit_code == 0, result.stderr
    warnings = [ln for ln in error_lines(result.stderr) if ln.startswith("warning: ")]
    assert len(warnings) == 1 and "broken frame" in warnings[0], result.stderr
    doc = json.loads((tmp_path / "out.settings.json").read_text())
    assert doc["decode"]["expected_frames"] == 40 and doc["decode"]["repeated_frames"] >= 1
    assert doc["decode"]["decoded_frames"] + doc["decode"]["repeated_frames"] == doc["frames"] >= 39
    assert doc["warnings"] and "broken frame" in doc["warnings"][0]
    assert sum(1 for _ in iter_frames(out)) == doc["frames"]
    assert sha(clips["patch4k"]) == before

    # A batch reports it when the job runs, and again on every rerun that skips it as done.
    manifest = tmp_path / "night.toml"
    manifest.write_text(
        f'[defaults]\nmodel = "tiny"\nsteps = 1\noctaves = 1\nmax_side = 64\n\n'
        f'[[job]]\nkind = "video"\ninput = {json.dumps(str(clips["patch4k"]))}\noutput = "b.mp4"\n'
    )
    first = runner.invoke(app, ["batch", str(manifest)])
    assert first.exit_code == 0, first.stderr
    assert "warning: " in first.stdout and "broken frame" in first.stdout
    again = runner.invoke(app, ["batch", str(manifest)])
    assert again.exit_code == 0 and "skipped" in again.stdout and "with a warning" in again.stdout, again.stdout


def test_decoder_chatter_never_reaches_stderr(clips, tmp_path):
    """ffmpeg inside OpenCV writes '[h264 @ 0x...]' lines straight to fd 2; none may appear."""
    code = (
        "import sys; sys.path.insert(0, %r); from dreamvideo.decode import iter_frames; from dreamvideo.probe "
        "import probe; probe(sys.argv[1]); print(sum(1 for _ in iter_frames(sys.argv[1])))" % str(REPO)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(clips["patch4k"])], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 39
    assert proc.stderr == "", proc.stderr


def test_non_utf8_input_name_does_not_crash_opencv(clips, tmp_path):
    """OpenCV segfaulted on a name with a byte that is not UTF-8: checked in a child process first."""
    weird = tmp_path / os.fsdecode(b"clip\xff.mp4")
    weird.write_bytes(clips["clean"].read_bytes())
    code = (
        "import os, sys; sys.path.insert(0, %r); from dreamvideo.decode import iter_frames; from dreamvideo.probe "
        "import probe; p = os.fsdecode(sys.argv[1].encode('utf-8', 'surrogateescape')); "
        "print(probe(p).fps, sum(1 for _ in iter_frames(p)))" % str(REPO)
    )
    proc = subprocess.run([sys.executable, "-c", code, os.fsencode(weird)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["10", "40"]
    assert sha(weird) == sha(clips["clean"])


@pytest.mark.parametrize(
    "name,out", [("a:b.mp4", "c:d.mp4"), (b"clip\xff.mp4", b"dream\xfe.mp4")], ids=["colon", "non-UTF-8"]
)
def test_colon_and_non_utf8_names_are_files(clips, tmp_path, monkeypatch, name, out):
    """'a:b.mp4' is not the protocol 'a'; a name that is not UTF-8 renders and prints as its bytes."""
    name, out = (os.fsdecode(n) for n in (name, out))
    (tmp_path / name).write_bytes(clips["clean"].read_bytes())
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["video", name, "-o", out, *TINY_FLAGS, "--max-side", "48", "--max-frames", "3"])
    assert result.exit_code == 0, result.stderr
    assert sum(1 for _ in iter_frames(tmp_path / out)) == 3
    assert listing(tmp_path) == {name, out, Path(out).stem + ".settings.json"}
    assert sha(tmp_path / name) == sha(clips["clean"])


def test_still_image_given_to_video_names_image_and_zoom(tmp_path, media, monkeypatch):
    import dreamvideo.dream

    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded for a still image")

    monkeypatch.setattr(dreamvideo.dream, "get_engine", no_model)
    result = runner.invoke(app, ["video", str(media / "fruits.jpg"), "-o", str(tmp_path / "o.mp4"), *TINY_FLAGS])
    assert result.exit_code == 1
    assert_one_error(result.stderr, "still image", "dreamvideo image", "dreamvideo zoom")
    assert listing(tmp_path) == set()


# --- failure paths end cleanly --------------------------------------------------------------------


# The CLI in a child process with a stand-in model that never dreams (and no TensorFlow to import):
# enough for renders that fail after decoding started, before the first frame is dreamed.
STUB_BOOT = f"""
import sys, types
sys.path.insert(0, {str(REPO)!r})
import dreamvideo.dream as dream
from dreamvideo.cli import app
stub = types.SimpleNamespace(name="stub", layers=("none",),
                             loaded=types.SimpleNamespace(notes=(), source=types.SimpleNamespace(detail="stub")))
dream.get_engine = lambda *_a, **_k: stub
app()
"""


def test_error_after_decoding_started_joins_the_decoder(tmp_path):
    """--react on a silent clip fails inside the render: exit 1, one line, no C++ abort after it."""
    make_clip(tmp_path / "silent.mp4", seconds=2.0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(3):  # before the fix the abort (status 134) showed in 2 of 3 runs of this very command
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                STUB_BOOT,
                "video",
                "silent.mp4",
                "-o",
                "o.mp4",
                "--react",
                "step_size=loudness:0.01..0.04",
            ],
            cwd=tmp_path,
            capture_output=True,
            env=env,
            timeout=120,
        )
        stderr = proc.stderr.decode(errors="replace")
        assert proc.returncode == 1, stderr[-2000:]
        assert_one_error(stderr, "sound")
        assert "terminate called" not in stderr and "FATAL" not in stderr
    assert listing(tmp_path) == {"silent.mp4"}


def test_failed_render_leaves_no_thread_behind(tmp_path):
    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "silent.mp4", seconds=1.0)
    before = set(threading.enumerate())
    with pytest.raises(ConfigError):
        render_video(clip, tmp_path / "o.mp4", tiny(react=["step_size=loudness:0.01..0.04"]))
    assert set(threading.enumerate()) <= before
    assert listing(tmp_path) == {"silent.mp4"}


@pytest.mark.slow
def test_ctrl_c_into_an_existing_frames_folder_ends_promptly(tmp_path):
    # 1000 frames: the tiny model dreams ~90 a second on a quiet machine, and once in a full run all of 200
    # were done before the signal landed (exit 0, the bar at 200/200).
    make_clip(tmp_path / "clip.mp4", seconds=100.0, size="96x64")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):  # a previous run's frames, which the new render replaces only when complete
        (frames / f"frame_{i + 1:06d}.png").write_bytes(b"old")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT, "video", "clip.mp4", "-o", "frames/", *TINY_FLAGS],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    state = work_dir_for(frames) / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["frames_done"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert b"1000/1000" not in err, "the render finished before the signal: lengthen the clip"
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err.decode() and b"Traceback" not in err
    assert sorted(p.read_bytes() for p in frames.iterdir()) == [b"old"] * 3
    assert json.loads(state.read_text())["frames_done"] >= 2  # resumable


# --- input identity by content --------------------------------------------------------------------


def test_same_size_clip_with_kept_mtime_restarts_the_render(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    make_clip(a, seconds=1.0, src="testsrc2")
    data = bytearray(a.read_bytes())
    data[len(data) // 2] ^= 0xFF  # another clip of exactly the same size
    b.write_bytes(bytes(data))
    st = a.stat()
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(a.read_bytes())
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    out = tmp_path / "out.mp4"
    work = WorkDir(out, "digest", input_identity(clip))
    work.open()
    work.save_frame(0, np.zeros((8, 8, 3), np.uint8))
    work.release()
    clip.write_bytes(b.read_bytes())  # `cp -p b.mp4 clip.mp4`
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert clip.stat().st_size == a.stat().st_size and clip.stat().st_mtime_ns == st.st_mtime_ns
    again = WorkDir(out, "digest", input_identity(clip))
    assert again.open() == 0
    assert "input changed" in again.restarted_reason
    again.remove()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # only touched: the same input
    assert input_identity(a) == input_identity(tmp_path / "a.mp4") == input_identity(Path(os.path.relpath(a)))


def _replace_keeping_size_and_time(path: Path, other: np.ndarray) -> None:
    """Write ``other`` (uint8 image) over ``path`` (a BMP: same dimensions = same size), keeping its mtime."""
    import cv2

    st = path.stat()
    cv2.imwrite(str(path), other)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_replaced_mask_restarts_a_resumed_render_and_a_batch(tmp_path):
    import cv2

    from dreamvideo.cli import _parse_set, _settings
    from dreamvideo.render import render_video
    from dreamvideo.toolkit import settings_path

    clip = make_clip(tmp_path / "clip.mp4", seconds=0.6, size="96x64")
    mask = tmp_path / "mask.bmp"
    left = np.zeros((64, 96), np.uint8)
    left[:, :48] = 255
    cv2.imwrite(str(mask), left)
    flat = {"model": "tiny", "steps": 1, "warm_steps": 1, "octaves": 1, "step_size": 0.05, "mask": str(mask)}
    settings = _settings(None, _parse_set([f"{k}={v}" for k, v in flat.items()]))
    out = tmp_path / "frames/"  # PNG frames: the masked-off half stays exactly the clip's

    def stop_at_3(done: int, _total) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(clip, out, settings, on_progress=stop_at_3)
    _replace_keeping_size_and_time(mask, 255 - left)  # the other half: same name, size and time
    notes: list[str] = []
    render_video(clip, out, settings, on_note=notes.append)
    assert "the mask changed since the interrupted render: starting over" in notes, notes
    doc = json.loads(settings_path(out).read_text())
    assert doc["resumed_frames"] == 0 and doc["control_identity"]["mask"]["size"] == mask.stat().st_size
    right = np.ones((64, 96), bool)
    right[:, :48] = False
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 6
    for raw, frame in zip(iter_frames(clip), frames):  # every frame dreamed on the new (right) half only
        change = np.abs(cv2.imread(str(frame))[..., ::-1].astype(np.float32) - raw).max(axis=2)
        assert change[~right].max() <= 1 and change[right].mean() > 2, f"{frame.name}: frames of the old mask kept"

    # A batch calls a job done for the same mask, and runs it again once the mask is replaced.
    cv2.imwrite(str(tmp_path / "in.bmp"), cv2.cvtColor(next(iter_frames(clip)), cv2.COLOR_RGB2BGR))
    keys = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in flat.items() if k not in ("mask", "warm_steps"))
    manifest = tmp_path / "night.toml"
    manifest.write_text(f'[[job]]\nkind = "image"\ninput = "in.bmp"\noutput = "still.png"\nmask = "mask.bmp"\n{keys}')
    first = runner.invoke(app, ["batch", str(manifest)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["batch", str(manifest)])
    assert "skipped: already done" in again.output, again.output
    _replace_keeping_size_and_time(mask, left)
    again = runner.invoke(app, ["batch", str(manifest)])
    assert again.exit_code == 0 and "already done" not in again.output and "1 done" in again.output, again.output


def test_replaced_guide_restarts_and_the_same_guide_resumes(tmp_path):
    import cv2

    from dreamvideo.resume import with_controls

    guide = tmp_path / "guide.bmp"
    cv2.imwrite(str(guide), np.full((16, 16, 3), 40, np.uint8))
    settings = merge(Settings(), {"guide": str(guide)}, "test")
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.3)
    out = tmp_path / "out.mp4"

    def reopen() -> WorkDir:
        work = WorkDir(out, settings.digest(), with_controls(input_identity(clip), settings))
        work.open()
        return work

    work = reopen()
    work.save_frame(0, np.zeros((8, 8, 3), np.uint8))
    work.release()
    work = reopen()  # the same guide: resumes
    assert work.frames_done == 1 and work.restarted_reason is None
    work.release()
    _replace_keeping_size_and_time(guide, np.full((16, 16, 3), 41, np.uint8))
    work = reopen()
    assert work.frames_done == 0
    assert work.restarted_reason == "the guide image changed since the interrupted render: starting over"
    work.remove()
    assert with_controls({"size": 1}, Settings()) == {"size": 1}  # no guide or mask: the identity as before


def test_large_inputs_are_identified_by_sampled_blocks(tmp_path, monkeypatch):
    import dreamvideo.resume as resume

    monkeypatch.setattr(resume, "_FULL_HASH_MAX", 1000)
    monkeypatch.setattr(resume, "_BLOCK", 100)
    f = tmp_path / "big.bin"
    data = bytearray(os.urandom(5000))
    f.write_bytes(bytes(data))
    first = resume.content_hash(f)
    assert first.startswith("sha256-sampled:")
    for pos in (0, 4900 * 8 // 15, 4999):  # head, middle (the 9th of 16 blocks) and tail blocks are read
        changed = bytearray(data)
        changed[pos] ^= 1
        f.write_bytes(bytes(changed))
        assert resume.content_hash(f) != first, pos


# --- one output, one writer -----------------------------------------------------------------------


def test_second_render_of_one_output_says_who_holds_it(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"
    holder = WorkDir(out, "other settings", input_identity(clip))
    holder.open()
    holder.save_frame(0, np.full((8, 8, 3), 7, np.uint8))
    state = sha(work_dir_for(out) / "state.json")
    frame = sha(holder.frame_path(0))
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), *TINY_FLAGS])
    assert result.exit_code == 1
    assert_one_error(result.stderr, "another process", f"pid {os.getpid()}")
    assert sha(work_dir_for(out) / "state.json") == state and sha(holder.frame_path(0)) == frame  # undisturbed
    assert listing(tmp_path) == {"clip.mp4", work_dir_for(out).name}
    holder.release()
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), *TINY_FLAGS, "--max-frames", "2"])
    assert result.exit_code == 0, result.stderr
    assert listing(tmp_path) == {"clip.mp4", "out.mp4", "out.settings.json"}


def test_the_lock_dies_with_its_holder(tmp_path):
    out = tmp_path / "out.mp4"
    code = (
        "import sys, time; sys.path.insert(0, %r); from dreamvideo.resume import WorkDir; "
        "w = WorkDir(sys.argv[1], 'd', None); w.open(); print('held', flush=True); time.sleep(600)" % str(REPO)
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(BusyError, match=f"pid {proc.pid}"):
        WorkDir(out, "d", None).open()
    proc.kill()
    proc.wait()
    work = WorkDir(out, "d", None)
    assert work.open() == 0  # the kernel released the dead holder's lock
    work.remove()


# --- the work folder trusts only what it verifies -------------------------------------------------


def _work_with_frames(out: Path, n: int, size=(12, 8)) -> WorkDir:
    work = WorkDir(out, "digest", {"size": 1, "content": "x"})
    work.open()
    for i in range(n):
        work.save_frame(i, np.full((size[1], size[0], 3), 10 * i, np.uint8))
    work.release()
    return work


def _write_state(out: Path, state) -> None:
    (work_dir_for(out) / "state.json").write_text(json.dumps(state))


def _ok(frames_done):
    return {"digest": "digest", "input": {"size": 1, "content": "x"}, "frames_done": frames_done}


def _damage_frame(index: int, how: str):
    def damage(out: Path) -> None:
        path = work_dir_for(out) / "frames" / f"{index + 1:06d}.png"
        if how == "missing":
            path.unlink()
        elif how == "truncated":
            path.write_bytes(path.read_bytes()[:-20])
        elif how == "size":
            import cv2

            cv2.imwrite(str(path), np.zeros((9, 12, 3), np.uint8))

    return damage


# (case, how the folder is damaged, frames a resume keeps, words the note must hold)
WORK_CASES = [
    ("state is a list", lambda out: _write_state(out, [1, 2]), 0, "damaged"),
    ("count is a word", lambda out: _write_state(out, _ok("five")), 0, "damaged"),
    ("count is negative", lambda out: _write_state(out, _ok(-5)), 0, "damaged"),
    ("count is a bool", lambda out: _write_state(out, _ok(True)), 0, "damaged"),
    ("count is a float", lambda out: _write_state(out, _ok(2.5)), 0, "damaged"),
    ("not JSON", lambda out: (work_dir_for(out) / "state.json").write_text("{"), 0, "no readable state"),
    ("count over the frames on disk", lambda out: _write_state(out, _ok(40)), 4, "frame 5 of the interrupted"),
    ("a middle frame missing", _damage_frame(1, "missing"), 1, "frame 2 of the interrupted render is missing"),
    ("a middle frame truncated", _damage_frame(2, "truncated"), 2, "frame 3 of the interrupted render is truncated"),
    ("a middle frame of another size", _damage_frame(1, "size"), 1, "12x9, not 12x8"),
    ("the last frame truncated", _damage_frame(3, "truncated"), 3, "frame 4"),
]


@pytest.mark.parametrize("case,damage,kept,words", WORK_CASES, ids=[c[0] for c in WORK_CASES])
def test_damaged_work_folder_resumes_from_the_first_bad_frame(tmp_path, case, damage, kept, words):
    out = tmp_path / "out.mp4"
    _work_with_frames(out, 4)
    damage(out)
    work = WorkDir(out, "digest", {"size": 1, "content": "x"})
    assert work.open() == kept
    said = f"{work.restarted_reason} {work.resume_note}"
    assert words in said, said
    assert "Traceback" not in said
    if kept:
        assert f"resuming from frame {kept + 1}" in said and "state.json" not in said
    work.remove()


def test_cli_resume_over_a_damaged_frame_says_so_and_completes(tmp_path):
    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"

    def stop_at_5(done: int, _total) -> None:
        if done == 5:
            raise KeyboardInterrupt

    settings = [
        "--set",
        "model=tiny",
        "--set",
        "steps=1",
        "--set",
        "octaves=1",
        "--set",
        "step_size=0.05",
        "--set",
        "warm_steps=1",
    ]
    from dreamvideo.cli import _parse_set, _settings

    with pytest.raises(KeyboardInterrupt):
        render_video(clip, out, _settings(None, _parse_set(settings[1::2])), on_progress=stop_at_5)
    _damage_frame(2, "truncated")(out)
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), *settings])
    assert result.exit_code == 0, result.stderr
    assert "finished frame 3 of the interrupted render is truncated or damaged: resuming from frame 3" in result.stderr
    assert sum(1 for _ in iter_frames(out)) == 10
    assert listing(tmp_path) == {"clip.mp4", "out.mp4", "out.settings.json"}


# --- full disks, removed folders --------------------------------------------------------------------


def test_full_disk_says_so_and_how_much_the_render_needs(tmp_path, monkeypatch):
    import dreamvideo.encode as encode

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    real_replace = os.replace

    def full_after_3(src, dst):
        if str(dst).endswith("000004.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(encode.os, "replace", full_after_3)
    result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "o.mp4"), *TINY_FLAGS])
    assert result.exit_code == 1
    assert_one_error(result.stderr, "is full", "needs about", "kB more")
    assert not (tmp_path / "o.mp4").exists()
    assert (work_dir_for(tmp_path / "o.mp4") / "frames" / "000003.png").is_file()  # finished frames kept


def test_out_of_inodes_writing_the_state_is_one_line(tmp_path, monkeypatch):
    import dreamvideo.resume as resume

    work = WorkDir(tmp_path / "o.mp4", "d", None)
    work.open()
    monkeypatch.setattr(resume.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "no inodes")))
    with pytest.raises(DiskFullError, match="is full"):
        work.save_frame(0, np.zeros((8, 8, 3), np.uint8))
    work.release()


def test_short_disk_is_a_note_before_the_first_frame(tmp_path, monkeypatch):
    import dreamvideo.resume as resume  # where the work folder's plan looks the free space up

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    monkeypatch.setattr(resume, "free_bytes", lambda _folder: 1000)
    result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "o.mp4"), *TINY_FLAGS, "--max-frames", "2"])
    assert result.exit_code == 0, result.stderr
    assert any("may need about" in ln and "1.0 kB free" in ln for ln in error_lines(result.stderr)), result.stderr


def test_work_folder_removed_mid_render_is_named(tmp_path):
    import shutil

    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "o.mp4"

    def remove_at_3(done: int, _total) -> None:
        if done == 3:
            shutil.rmtree(work_dir_for(out))

    with pytest.raises(OutputError, match="the work folder .* was removed while the render was writing"):
        render_video(clip, out, tiny(), on_progress=remove_at_3)
    assert not out.exists()

    def remove_folder_at_3(done: int, _total) -> None:
        if done == 3:
            shutil.rmtree(tmp_path / "sub")

    (tmp_path / "sub").mkdir()
    with pytest.raises(OutputError, match="its folder .* was removed while the render was writing"):
        render_video(clip, tmp_path / "sub" / "o.mp4", tiny(), on_progress=remove_folder_at_3)


# --- output names -----------------------------------------------------------------------------------

NAME_CASES = [
    ("1 character", "x", 0),
    ("200 characters", "n" * 196 + ".mp4", 0),
    ("240 characters", "n" * 236 + ".mp4", 0),
    ("255 characters", "n" * 251 + ".mp4", 0),
    ("255-character frames folder", "f" * 255 + "/", 0),
    ("non-UTF-8 byte", os.fsdecode(b"o\xff.mp4"), 0),
    ("a colon", "a:b.mp4", 0),
    ("a leading dash", "-lead.mp4", 0),
    ("256 characters", "n" * 252 + ".mp4", 1),
    ("the current folder", ".", 1),
]


@pytest.mark.parametrize("case,name,code", NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_output_names_work_or_are_one_line(tmp_path, monkeypatch, case, name, code):
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.5)
    before = sha(clip)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = runner.invoke(
        app, ["video", str(clip), f"--output={name}", *TINY_FLAGS, "--max-side", "32", "--max-frames", "2"]
    )
    assert result.exit_code == code, result.stderr
    if code:
        assert_one_error(result.stderr)
        assert listing(work) == set()
    else:
        out = work / name.rstrip("/")
        names = listing(work)
        assert out.name in names and len(names) == 2, names  # the output and its settings JSON, nothing else
        assert all(len(os.fsencode(n)) <= 255 for n in names)
    assert sha(clip) == before


def test_sibling_names_fit_and_stay_apart():
    from dreamvideo.files import NAME_MAX, sibling_name

    assert sibling_name("dream.mp4", ".", ".partial.mp4") == ".dream.mp4.partial.mp4"
    a, b = "a" * 250 + "1.mp4", "a" * 250 + "2.mp4"
    sa, sb = sibling_name(a, "", ".dreamvideo-work"), sibling_name(b, "", ".dreamvideo-work")
    assert sa != sb and sa.endswith(".dreamvideo-work") and len(sa) == NAME_MAX
    assert sibling_name(a, "", ".dreamvideo-work") == sa  # stable: a resume finds its folder again
    wide = "é" * 127  # 254 bytes: cut by characters, never inside one
    assert len(os.fsencode(sibling_name(wide, ".", ".partial"))) <= NAME_MAX
    sibling_name(wide, ".", ".partial").encode("utf-8")


# --- hostile TOML -------------------------------------------------------------------------------------

HOSTILE = {
    "deep arrays": lambda: ("a = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "deep tables": lambda: ("description = 'x'\n[dream]\nx" + ".x" * 3000 + " = 1\n").encode(),
    "binary garbage": lambda: bytes(range(256)) * 40,
    "duplicate keys": lambda: b"description = 'a'\ndescription = 'b'\n",
    "a NUL byte": lambda: b"description = 'a\x00b'\n",
    "50 MB": lambda: b"description = 'big'\n" + (b"# " + b"x" * 98 + b"\n") * 500_000,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_toml_is_one_line_as_preset_manifest_and_in_the_listing(tmp_path, monkeypatch, case):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(HOSTILE[case]())
    before = sha(bad)
    for args in (
        ["presets", "show", str(bad)],
        ["batch", str(bad), "--dry-run"],
        ["image", str(bad), "-o", str(tmp_path / "o.png"), "--preset", str(bad)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert_one_error(result.stderr, str(bad))
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "bad.toml").write_bytes(bad.read_bytes())
    (folder / "mine.toml").write_text('description = "my own look"\n[dream]\nsteps = 3\n')
    monkeypatch.setenv("DREAMVIDEO_PRESETS", str(folder))
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0, result.stderr
    assert "mine" in result.stdout and "classic" in result.stdout and "bad" not in result.stdout
    notes = error_lines(result.stderr)
    assert len(notes) == 1 and notes[0].startswith("note: skipped") and "bad.toml" in notes[0], notes
    assert sha(bad) == before
    assert listing(tmp_path) == {"bad.toml", "user"}


def test_a_bom_is_accepted(tmp_path):
    preset = tmp_path / "bom.toml"
    preset.write_bytes(b"\xef\xbb\xbfdescription = 'with a BOM'\n[dream]\nsteps = 3\n")
    result = runner.invoke(app, ["presets", "show", str(preset)])
    assert result.exit_code == 0, result.stderr
    assert "with a BOM" in result.stdout and "steps = 3" in result.stdout


def test_read_toml_errors_are_config_errors(tmp_path):
    from dreamvideo.presets import read_toml

    with pytest.raises(ConfigError, match="is a folder"):
        read_toml(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        read_toml(tmp_path / "none.toml")
    with pytest.raises(InputError):  # and not a crash: an unreadable input is typed too
        input_identity(tmp_path / "none.mp4")


def test_frame_damaged_inside_is_redone_on_the_next_run(tmp_path):
    """A frame whose PNG looks complete but no longer decodes: one typed error, and the rerun redoes it."""
    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"

    def stop_at_5(done: int, _total) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(clip, out, tiny(), on_progress=stop_at_5)
    frame = work_dir_for(out) / "frames" / "000002.png"
    data = bytearray(frame.read_bytes())
    for i in range(60, min(len(data) - 20, 200)):  # inside the image data; header and end chunk intact
        data[i] ^= 0x55
    frame.write_bytes(bytes(data))
    with pytest.raises(InputError, match="finished frame 2 of the interrupted render is damaged: run the same"):
        render_video(clip, out, tiny())
    notes: list[str] = []
    result = render_video(clip, out, tiny(), on_note=notes.append)
    assert result.frames == 10 and result.resumed_frames == 1, notes
    assert sum(1 for _ in iter_frames(out)) == 10
