"""The driver toolkit's rules (output target, run context, frame rules) and the atomic-write helpers:
each rule written once, and the drivers use it.

Fast: arrays and a tiny model; one 4-frame clip.
"""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import numpy as np
import pytest

from dreamvideo.chain import hold_offset
from dreamvideo.config import Settings
from dreamvideo.errors import BusyError, ConfigError, OutputError, OutputKindError
from dreamvideo.files import atomic_path, temp_sibling, write_atomic
from dreamvideo.probe import ffmpeg_last_line
from dreamvideo.toolkit import (
    IMAGE_KINDS,
    VIDEO_KINDS,
    OutputTarget,
    RunContext,
    channel_mean,
    channel_stats,
    dream_params,
    frame_settings,
    match_color,
    output_target,
    seed_for_frame,
    settings_path,
    to_uint8,
)
from helpers import make_clip

PACKAGE = Path(__file__).resolve().parents[1] / "dreamvideo"


# --- frame rules ---------------------------------------------------------------------------------


def test_to_uint8_rounds_to_nearest_and_clips() -> None:
    out = to_uint8(np.array([-3.0, 0.4, 0.6, 1.5, 2.5, 254.6, 300.0], dtype=np.float32))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 1, 2, 2, 255, 255]  # numpy's rint: halves to even


def test_seed_depends_only_on_seed_and_index() -> None:
    assert seed_for_frame(7, 3) == seed_for_frame(7, 3)
    assert len({seed_for_frame(7, i) for i in range(100)}) == 100
    assert seed_for_frame(7, 3) != seed_for_frame(8, 3)
    assert all(0 <= seed_for_frame(2**40, i) < 2**31 - 1 for i in range(5))


def test_match_color_holds_mean_and_std_to_the_reference() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32) * 0.5 + 100
    ref = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32) * 0.3 + 20
    out = match_color(img, ref)
    assert np.allclose(out.reshape(-1, 3).mean(0), ref.reshape(-1, 3).mean(0), atol=0.05)
    assert np.allclose(out.reshape(-1, 3).std(0), ref.reshape(-1, 3).std(0), atol=0.05)


def test_channel_stats_are_exact_on_a_full_frame_and_leave_the_input() -> None:
    # A 1280x720 frame of values near 200: numpy's float32 column sums (reshape(-1, 3).mean(0))
    # drift here; the channel statistics sum in float64 and must match float64 to 1e-4.
    rng = np.random.default_rng(1)
    img = (200 + rng.normal(0, 30, (720, 1280, 3))).astype(np.float32)
    before = img.copy()
    mean, std = channel_stats(img)
    exact = img.astype(np.float64).reshape(-1, 3)
    assert mean.shape == std.shape == (3,) and mean.dtype == std.dtype == np.float32
    assert np.allclose(mean, exact.mean(0), atol=1e-4) and np.allclose(std, exact.std(0), atol=1e-4)
    assert np.allclose(channel_mean(img), exact.mean(0), atol=1e-4)
    assert np.array_equal(img, before)
    u8 = np.zeros((4, 5, 3), np.uint8) + np.array([1, 2, 250], np.uint8)
    assert channel_mean(u8).tolist() == [1.0, 2.0, 250.0]


def test_hold_offset_pins_the_saved_frames_dream_offset_to_the_previous_ones() -> None:
    rng = np.random.default_rng(2)
    raw = rng.uniform(20, 230, (36, 48, 3)).astype(np.float32)
    prev_raw = rng.integers(20, 230, (36, 48, 3)).astype(np.uint8)
    prev_out = np.clip(prev_raw.astype(np.int16) + np.array([9, -4, 2], np.int16), 0, 255).astype(np.uint8)
    out = np.clip(raw + rng.normal(0, 12, raw.shape) + np.array([-15.0, 20.0, 0.0]), 0, 255).astype(np.float32)
    given = out.copy()
    held = hold_offset(out, raw, prev_out, prev_raw)
    want = (prev_out.astype(np.float64) - prev_raw).reshape(-1, 3).mean(0)
    have = (np.rint(held).astype(np.float64) - raw).reshape(-1, 3).mean(0)  # as it is saved: uint8
    assert np.allclose(have, want, atol=0.05), (have, want)
    assert np.array_equal(out, given)  # the caller's frame is not changed in place
    assert held.dtype == np.float32 and held.min() >= 0 and held.max() <= 255


def test_frame_settings_apply_values_through_the_settings_and_validate() -> None:
    base = Settings().replace(steps=10, schedule=["step_size=0:0.01,1:0.02"])
    assert frame_settings(base, None) is base and frame_settings(base, {}) is base
    frame = frame_settings(base, {"step_size": 0.03, "warm_steps": 2, "blend": 0.5})
    assert (frame.dream.step_size, frame.video.warm_steps, frame.video.blend) == (0.03, 2, 0.5)
    assert frame.dream.steps == 10 and frame.schedule == ()  # the rest unchanged; the schedule is applied
    with pytest.raises(ConfigError, match="blend must be within 0..1"):
        frame_settings(base, {"blend": 1.5})
    with pytest.raises(ConfigError, match="unknown key 'no_such'"):
        frame_settings(base, {"no_such": 1})


def test_warm_frame_rule() -> None:
    s = Settings().replace(steps=10, step_size=0.02, octaves=4, warm_steps=3, warm_octaves=2, warm_step_scale=0.5)
    first = dream_params(s, warm=False)
    assert (first.steps, first.octaves, first.step_size) == (10, 4, 0.02)
    warm = dream_params(s, warm=True)
    assert (warm.steps, warm.octaves, warm.step_size) == (3, 2, 0.01)
    # min(warm_octaves, octaves): a frame with fewer octaves than warm_octaves keeps its own.
    assert dream_params(s.replace(octaves=1), warm=True).octaves == 1
    # zoom's rule: the full step_size.
    assert dream_params(s, warm=True, step_scale=1.0).step_size == 0.02
    # steps 0 disables all dreaming, seeded frames included.
    off = s.replace(steps=0)
    assert dream_params(off, warm=True).steps == 0 and dream_params(off, warm=False).steps == 0


def test_drivers_use_the_toolkit_rules_not_copies() -> None:
    """The rules exist once: no driver rounds to uint8 or pops per-frame values by hand."""
    for name in ("render.py", "zoom.py", "batch.py", "manifest.py"):
        text = (PACKAGE / name).read_text()
        assert "astype(np.uint8)" not in text, name
        assert "values.pop(" not in text, name
        assert ".partial" not in text and "os.replace" not in text, name


# --- the output target ---------------------------------------------------------------------------


def test_output_target_resolves_kind_once(tmp_path: Path) -> None:
    t = output_target(f"{tmp_path}/run.6/", [], allowed=VIDEO_KINDS)  # a folder with a dot, as text
    assert t.kind == "frames" and t.path == tmp_path / "run.6"
    assert output_target(t, [], allowed=VIDEO_KINDS) == t  # a resolved target keeps its kind
    assert settings_path(t) == tmp_path / "run.6.settings.json"
    assert output_target(tmp_path / "a.webm", [], allowed=VIDEO_KINDS).kind == "vp9"
    assert output_target(tmp_path / "a.jpg", [], allowed=IMAGE_KINDS).kind == "image"
    with pytest.raises(OutputError, match="unknown extension '.6'"):
        output_target(tmp_path / "run.6", [])  # pathlib dropped the '/': say what is known


def test_wrong_output_kind_is_one_message_and_both_error_types(tmp_path: Path) -> None:
    with pytest.raises(OutputKindError) as info:
        output_target(tmp_path / "still.png", [], allowed=VIDEO_KINDS)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, OutputError)
    assert str(info.value) == (
        f"output {str(tmp_path / 'still.png')!r} is a still image: this writes "
        ".mp4, .mov, .mkv, .webm, .gif or a folder/ for PNG frames"
    )
    with pytest.raises(OutputKindError, match=r"is a video: this writes \.png, \.jpg, \.jpeg, \.webp$"):
        output_target(tmp_path / "clip.mp4", [], allowed=IMAGE_KINDS)
    with pytest.raises(OutputKindError, match="is a PNG-frames folder"):
        output_target(f"{tmp_path}/frames/", [], allowed=IMAGE_KINDS)


def test_output_target_refuses_an_input_through_a_link(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    (tmp_path / "hard.mp4").hardlink_to(src)
    (tmp_path / "soft.mp4").symlink_to(src)
    for out in ("hard.mp4", "soft.mp4", "sub/../in.mp4"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(OutputError, match="is the input file"):
            output_target(tmp_path / out, [src, None], allowed=VIDEO_KINDS)


def test_video_renders_into_a_dotted_folder_given_as_text(tmp_path: Path) -> None:
    from dreamvideo.render import render_video

    clip = make_clip(tmp_path / "c.mp4", seconds=0.4, fps="10", size="96x64")
    settings = Settings().replace(model="tiny", steps=1, octaves=1, warm_steps=1, flow="dis-fast")
    result = render_video(clip, f"{tmp_path}/run.6/", settings)
    assert result.output == tmp_path / "run.6" and result.frames == 4
    assert len(list((tmp_path / "run.6").glob("frame_*.png"))) == 4
    assert result.settings_path == tmp_path / "run.6.settings.json" and result.settings_path.is_file()


# --- the run context -----------------------------------------------------------------------------


def test_run_context_collects_notes_and_writes_the_settings_json_once(tmp_path: Path) -> None:
    heard: list[str] = []
    target = output_target(tmp_path / "out.mp4", [], allowed=VIDEO_KINDS)
    settings = Settings().replace(steps=3)
    run = RunContext(target, settings, command="dv video", on_note=heard.append, record={"batch": {"job": "x"}})
    assert run.open_work({"input": None}) == 0 and run.work is not None and run.work.root.is_dir()
    run.work.save_frame(0, np.zeros((4, 4, 3), np.uint8))
    run.note("hello")
    # While the first holds the output, a second render of it is refused (one writer per output).
    with pytest.raises(BusyError, match="being rendered by another process"):
        RunContext(target, settings).open_work({"input": None})
    run.work.release()  # the first render was interrupted
    # A second context on the same output resumes and says so.
    again = RunContext(target, settings, on_note=heard.append)
    assert again.open_work({"input": None}) == 1
    again.work.release()
    assert heard == ["hello", "resuming: 1 finished frames kept from the interrupted render"]
    assert again.notes == ["resuming: 1 finished frames kept from the interrupted render"]
    # Other settings: the old work is discarded, with a note.
    other = RunContext(target, settings.replace(steps=4), on_note=heard.append)
    assert other.open_work({"input": None}) == 0 and heard[-1].startswith("settings changed")
    path = run.finish({"frames": 1})
    doc = json.loads(path.read_text())
    assert path == tmp_path / "out.settings.json"
    assert (doc["command"], doc["frames"], doc["batch"], doc["digest"]) == (
        "dv video",
        1,
        {"job": "x"},
        settings.digest(),
    )
    assert not run.work.root.exists()  # finished: the work folder is gone
    assert [p.name for p in tmp_path.iterdir()] == ["out.settings.json"]  # no temp file left


# --- atomic writes and ffmpeg's messages ---------------------------------------------------------


def test_atomic_writes_leave_the_final_name_untouched_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "a.json"
    assert temp_sibling(final) == tmp_path / ".a.json.partial.json"
    assert temp_sibling(tmp_path / "m.weights.h5", suffix=".weights.h5").name.endswith(".weights.h5")
    assert temp_sibling(final, unique=True) != temp_sibling(final)
    write_atomic(final, "one")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert final.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "b.json", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_ffmpeg_last_line_from_a_file_or_text() -> None:
    chatter = b"[h264 @ 0x1] Invalid NAL unit size\n" * 500 + b"  out.mp4: No space left on device  \n\n"
    assert ffmpeg_last_line(io.BytesIO(chatter)) == "out.mp4: No space left on device"
    assert ffmpeg_last_line("a\nb\n") == "b"
    assert ffmpeg_last_line(b"", "exit status 1") == "exit status 1"


# --- module rules --------------------------------------------------------------------------------


def _imports(path: Path) -> list[ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.level == 1]


def test_no_module_imports_a_private_name_of_another() -> None:
    bad = [
        f"{p.name}: from .{n.module} import {a.name}"
        for p in sorted(PACKAGE.glob("*.py"))
        for n in _imports(p)
        for a in n.names
        if a.name.startswith("_") and not a.name.startswith("__")
    ]
    assert bad == []


def test_no_import_cycle_at_module_level() -> None:
    """Module-level intra-package imports form no cycle (imports inside functions are lazy by design)."""
    graph: dict[str, set[str]] = {}
    for p in PACKAGE.glob("*.py"):
        tree = ast.parse(p.read_text())
        deps = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[p.stem] = {d.split(".")[0] for d in deps if d}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError(" -> ".join([*stack, m, d]))
            if d not in state:
                visit(d, [*stack, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_output_target_is_a_path_like(tmp_path: Path) -> None:
    t = OutputTarget(tmp_path / "x.mp4", "h264")
    assert Path(t) == tmp_path / "x.mp4"
