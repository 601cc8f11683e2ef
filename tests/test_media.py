"""probe / decode / encode against synthetic clips made with the bundled ffmpeg, and real clips in
../shared/media. Tiny frames and few frames so the whole file runs in seconds."""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from dreamvideo.decode import iter_frames, iter_timed_frames, read_audio, read_image, resize_max_side
from dreamvideo.encode import FrameWriter, check_output_path, open_writer, output_kind, write_image
from dreamvideo.errors import InputError, MediaError, OutputError
from dreamvideo.probe import ffmpeg_exe, probe, require_video
from dreamvideo.timing import snap_fps
from helpers import MEDIA, ffmpeg, need, one_line

NTSC = Fraction(24000, 1001)


def video_frames(n: int, w: int = 160, h: int = 120, seed: int = 0) -> list[np.ndarray]:
    """n distinct RGB frames: a moving bright square on a gradient."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 80)], -1).astype(np.uint8)
    frames = []
    for i in range(n):
        f = base.copy()
        x0 = (i * 5) % (w - 20)
        f[20:40, x0 : x0 + 20] = (255, 255, 255)
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {
        "ntsc": d / "ntsc.mp4",  # 2 s testsrc2 at 24000/1001, no audio
        "long": d / "long.mp4",  # 5 s, one keyframe (seeking has to decode forward)
        "rot": d / "rot.mp4",  # ntsc with a 90 degree display rotation
        "sine5": d / "sine5.m4a",  # 5 s 440 Hz, audio only
        "sine_half": d / "sine_half.wav",  # 0.5 s 440 Hz
        "av": d / "av clip 'q' é.mp4",  # video + audio, odd name
    }
    src = "testsrc2=size=160x120:rate=24000/1001"
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    ffmpeg("-f", "lavfi", "-i", src, "-t", "2", *x264, str(c["ntsc"]))
    ffmpeg("-f", "lavfi", "-i", src, "-t", "5", *x264, "-g", "1000", str(c["long"]))
    ffmpeg("-display_rotation", "90", "-i", str(c["ntsc"]), "-c", "copy", str(c["rot"]))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=5", str(c["sine5"]))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", str(c["sine_half"]))
    ffmpeg("-f", "lavfi", "-i", src, "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-t", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["av"]))  # fmt: skip
    return c


# ---------------------------------------------------------------------------------------- probe


def test_snap_fps_recovers_exact_rates():
    assert snap_fps(24000 / 1001) == Fraction(24000, 1001)
    assert snap_fps(30000 / 1001) == Fraction(30000, 1001)
    assert snap_fps(60000 / 1001) == Fraction(60000, 1001)
    assert snap_fps(25.0) == 25 and snap_fps(12.5) == Fraction(25, 2)
    assert snap_fps(1_000_000 / 66667) == 15  # AVI microseconds-per-frame header (tree.avi)


def test_probe_ntsc_clip_is_exact(clips):
    info = probe(clips["ntsc"])
    assert info.fps == Fraction(24000, 1001) and isinstance(info.fps, Fraction)
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.has_video and not info.has_audio
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == 48


def test_probe_audio_and_audio_only(clips):
    assert probe(clips["av"]).has_audio
    info = probe(clips["sine5"])
    assert info.has_audio and not info.has_video and info.fps is None
    with pytest.raises(InputError) as e:
        require_video(info)
    assert "no video stream" in one_line(e.value)
    with pytest.raises(InputError):
        iter_frames(clips["sine5"])


def test_probe_still_image(tmp_path):
    p = tmp_path / "still.png"
    cv2.imwrite(str(p), np.zeros((30, 40, 3), np.uint8))
    info = probe(p)
    assert info.has_video and info.fps is None and info.is_still and (info.width, info.height) == (40, 30)


def test_probe_input_errors(tmp_path):
    with pytest.raises(InputError) as e:
        probe(tmp_path / "missing.mp4")
    assert "not found" in one_line(e.value)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError) as e:
        probe(empty)
    assert "empty" in one_line(e.value)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(InputError) as e:
        probe(text)
    assert "not a readable video" in one_line(e.value)
    for bad in (tmp_path / "missing.mp4", empty, text):
        with pytest.raises(InputError):
            iter_frames(bad)  # raises at the call, before the first frame is asked for


# ---------------------------------------------------------------------------------------- decode


def test_iter_frames_rgb_count_and_max_side(clips):
    frames = list(iter_frames(clips["ntsc"]))
    assert len(frames) == 48
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
    # RGB, not BGR: compare with ffmpeg's own rgb24 decode of frame 0.
    raw = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(clips["ntsc"]), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    ref = np.frombuffer(raw, np.uint8).reshape(120, 160, 3)
    assert np.abs(frames[0].astype(int) - ref).mean() < 3
    small = next(iter_frames(clips["ntsc"], max_side=80))
    assert small.shape == (60, 80, 3)


def test_rotated_clip_decodes_upright(clips):
    info = probe(clips["rot"])
    assert (info.width, info.height) == (120, 160) and info.rotation == 270
    plain = next(iter_frames(clips["ntsc"]))
    rot = next(iter_frames(clips["rot"]))
    assert rot.shape == (160, 120, 3)  # portrait, as the display matrix says
    # ffmpeg's display matrix "rotation of 90 degrees" is counter-clockwise.
    assert np.array_equal(rot, np.rot90(plain, 1))


def test_start_and_duration_select_frames_by_time(clips):
    all_frames = list(iter_timed_frames(clips["long"]))
    assert len(all_frames) == 120
    got = list(iter_timed_frames(clips["long"], start=3.0, duration=0.5))
    want = [(t, f) for t, f in all_frames if 3.0 <= t < 3.5]
    assert len(got) == len(want) == 12
    assert got[0][0] >= 3.0
    for (tg, fg), (tw, fw) in zip(got, want):
        assert tg == pytest.approx(tw) and np.array_equal(fg, fw)
    assert len(list(iter_frames(clips["long"], start=1.0, max_frames=5))) == 5
    assert list(iter_frames(clips["long"], start=60.0)) == []


def test_tree_avi_header_lies_decoding_is_truth():
    tree = need(MEDIA / "tree.avi")
    info = probe(tree)
    assert info.frame_count == 444 and info.fps == 15
    assert sum(1 for _ in iter_frames(tree)) == 68
    # Its timestamps are uneven: OpenCV's fps-based seek overshoots; frames must still be >= start.
    timed = list(iter_timed_frames(tree, start=2.0))
    assert timed and timed[0][0] >= 2.0
    assert len(timed) == sum(1 for t, _ in iter_timed_frames(tree) if t >= 2.0)


def test_truncated_real_clip_decodes_what_it_can(tmp_path):
    vtest = need(MEDIA / "vtest.avi")
    data = vtest.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    n = sum(1 for _ in iter_frames(cut, max_side=96))
    assert 0 < n < 795


def test_read_image_gray_rgba_16bit(tmp_path):
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.full((10, 12), 77, np.uint8))
    g = read_image(gray)
    assert g.shape == (10, 12, 3) and g.dtype == np.uint8 and (g == 77).all()

    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 2] = 255  # red in BGR order
    bgra[:, :6, 3] = 255  # left half opaque red, right half fully transparent
    rgba_path = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba_path), bgra)
    rgba = read_image(rgba_path)
    assert rgba.shape == (10, 12, 3)
    assert (rgba[:, :6] == (255, 0, 0)).all()  # RGB order
    assert (rgba[:, 6:] == 255).all()  # transparent composited on white

    deep = np.zeros((4, 4, 3), np.uint16)
    deep[..., 1] = 65535
    deep[0, 0] = (32896, 32896, 32896)
    p16 = tmp_path / "deep.png"
    cv2.imwrite(str(p16), deep)
    d = read_image(p16)
    assert d.dtype == np.uint8 and (d[1:, 1:] == (0, 255, 0)).all() and (d[0, 0] == 128).all()


def test_read_image_errors(tmp_path):
    with pytest.raises(InputError):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").touch()
    with pytest.raises(InputError):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "text.png")
    one_line(e.value)


def test_resize_max_side_never_upscales():
    img = np.zeros((100, 50, 3), np.uint8)
    assert resize_max_side(img, 200) is img and resize_max_side(img, None) is img
    assert resize_max_side(img, 40).shape == (40, 20, 3)


def test_read_audio_length_and_pitch(clips):
    a = read_audio(clips["sine5"], sample_rate=22050, start=1.0, duration=2.0)
    assert a.dtype == np.float32 and a.ndim == 1
    assert len(a) == pytest.approx(2 * 22050, abs=64)
    assert np.abs(a).max() <= 1.0 and np.sqrt(np.mean(a**2)) > 0.05
    spectrum = np.abs(np.fft.rfft(a))
    peak_hz = np.argmax(spectrum) * 22050 / len(a)
    assert peak_hz == pytest.approx(440, abs=2)
    # The cut is sample-exact: ffmpeg's input seek alone lands ~22 ms late in AAC-in-MP4.
    full = read_audio(clips["sine5"], sample_rate=22050)
    assert len(full) == pytest.approx(5 * 22050, abs=64)
    assert np.abs(a[:2000] - full[22050:24050]).max() < 0.01
    with pytest.raises(InputError) as e:
        read_audio(clips["ntsc"])
    assert "no audio" in one_line(e.value)


# ---------------------------------------------------------------------------------------- encode


def test_writer_keeps_ntsc_rate_and_frame_count(tmp_path):
    out = tmp_path / "out.mp4"
    with open_writer(out, NTSC, (160, 120), encoder_preset="ultrafast") as w:
        for f in video_frames(30):
            w.write(f)
    assert w.frames_written == 30
    info = probe(out)
    assert info.fps == Fraction(24000, 1001) and not info.has_audio
    assert sum(1 for _ in iter_frames(out)) == 30
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]  # no temp files left


def test_odd_size_is_padded_not_stretched(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 2, (121, 161), dtype=np.uint8) * 255  # 1-pixel detail: any resize blurs it
    frame = np.repeat(gray[:, :, None], 3, axis=2)
    out = tmp_path / "odd.mp4"
    with FrameWriter(out, 10, (161, 121), crf=0, encoder_preset="ultrafast") as w:
        w.write(frame)
        w.write(frame)
    info = probe(out)
    assert (info.width, info.height) == (162, 122)
    back = next(iter_frames(out))
    assert np.abs(back[:121, :161].astype(int) - frame).mean() < 8  # same pixels in the same place
    assert np.abs(back[:121, 161].astype(int) - back[:121, 160]).mean() < 8  # edge replicated


def test_audio_cut_to_video_length(tmp_path, clips):
    out = tmp_path / "with sound.mp4"
    with FrameWriter(out, NTSC, (160, 120), encoder_preset="ultrafast", audio_from=clips["sine5"]) as w:
        for f in video_frames(24):
            w.write(f)
    assert probe(out).has_audio
    video_s = 24 / NTSC
    audio_s = len(read_audio(out, sample_rate=8000)) / 8000
    assert abs(audio_s - float(video_s)) <= float(1 / NTSC)
    assert sorted(os.listdir(tmp_path)) == ["with sound.mp4"]


def test_audio_start_is_in_sync(tmp_path, clips):
    out = tmp_path / "from_half.mp4"
    with FrameWriter(out, 24, (160, 120), encoder_preset="ultrafast", audio_from=clips["sine5"], audio_start=1.5) as w:
        for f in video_frames(12):
            w.write(f)
    got = read_audio(out, sample_rate=22050)
    want = read_audio(clips["sine5"], sample_rate=22050, start=1.5, duration=0.5)
    assert len(got) == pytest.approx(len(want), abs=int(22050 / 24))
    # Same phase of the 440 Hz tone (a 1 ms shift would already give errors around 0.1).
    assert np.abs(got[2000:8000] - want[2000:8000]).max() < 0.03


def test_short_audio_does_not_cut_video(tmp_path, clips):
    out = tmp_path / "short.mkv"
    with FrameWriter(out, 24, (160, 120), encoder_preset="ultrafast", audio_from=clips["sine_half"]) as w:
        for f in video_frames(24):
            w.write(f)
    assert probe(out).has_audio
    assert sum(1 for _ in iter_frames(out)) == 24


def test_silent_source_gives_silent_output(tmp_path, clips):
    out = tmp_path / "silent.mp4"
    with FrameWriter(out, 24, (160, 120), encoder_preset="ultrafast", audio_from=clips["ntsc"]) as w:
        for f in video_frames(5):
            w.write(f)
    info = probe(out)
    assert info.has_video and not info.has_audio


def test_webm_with_opus(tmp_path, clips):
    out = tmp_path / "clip.webm"
    with FrameWriter(out, 12, (161, 121), crf=40, encoder_preset="ultrafast", audio_from=clips["av"]) as w:
        for f in video_frames(6, 161, 121):
            w.write(f)
    info = probe(out)
    assert info.has_audio and info.fps == 12 and (info.width, info.height) == (162, 122)


def test_gif_loops_forever(tmp_path):
    out = tmp_path / "anim.gif"
    with FrameWriter(out, 10, (64, 48)) as w:
        for f in video_frames(8, 64, 48):
            w.write(f)
    data = out.read_bytes()
    assert data[:6] == b"GIF89a"
    i = data.find(b"NETSCAPE2.0")
    assert i > 0 and data[i + 11 : i + 16] == b"\x03\x01\x00\x00\x00"  # loop count 0 = forever
    assert sum(1 for _ in iter_frames(out)) == 8
    assert sorted(os.listdir(tmp_path)) == ["anim.gif"]


def test_png_folder_output(tmp_path):
    frames = video_frames(3, 40, 30)
    target = str(tmp_path / "frames") + "/"
    assert output_kind(target) == "frames" and output_kind(tmp_path / "frames") == "frames"
    with FrameWriter(target, 10, (40, 30)) as w:
        for f in frames:
            w.write(f)
    names = sorted(os.listdir(tmp_path / "frames"))
    assert names == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert np.array_equal(read_image(tmp_path / "frames" / names[1]), frames[1])
    # A re-run replaces the previous frames whole; a folder with other files is refused.
    with FrameWriter(tmp_path / "frames", 10, (40, 30)) as w:
        w.write(frames[0])
    assert sorted(os.listdir(tmp_path / "frames")) == ["frame_000001.png"]
    assert sorted(os.listdir(tmp_path)) == ["frames"]
    (tmp_path / "frames" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError):
        check_output_path(tmp_path / "frames", [])


def test_aborted_writer_leaves_nothing(tmp_path, clips):
    for name, audio in (("abort.mp4", clips["sine5"]), ("abort.gif", None), ("abort/", None)):
        target = str(tmp_path / name)
        with pytest.raises(RuntimeError):
            with FrameWriter(target, NTSC, (160, 120), encoder_preset="ultrafast", audio_from=audio) as w:
                for f in video_frames(3):
                    w.write(f)
                raise RuntimeError("user pressed stop")
    assert os.listdir(tmp_path) == []
    # An existing output survives an aborted re-render untouched.
    old = tmp_path / "keep.mp4"
    old.write_bytes(b"previous render")
    with pytest.raises(KeyboardInterrupt):
        with FrameWriter(old, 24, (160, 120), encoder_preset="ultrafast") as w:
            w.write(video_frames(1)[0])
            raise KeyboardInterrupt
    assert old.read_bytes() == b"previous render" and os.listdir(tmp_path) == ["keep.mp4"]


def test_writer_with_no_frames_is_an_error(tmp_path):
    with pytest.raises(MediaError) as e:
        with FrameWriter(tmp_path / "none.mp4", 24, (160, 120)):
            pass
    assert "no frames" in one_line(e.value)
    assert os.listdir(tmp_path) == []


def test_ffmpeg_failure_is_media_error_and_leaves_nothing(tmp_path):
    bogus_audio = tmp_path / "bogus.wav"
    bogus_audio.write_text("not audio")
    out = tmp_path / "fail.mp4"
    with pytest.raises(MediaError) as e:
        with FrameWriter(out, 24, (160, 120), encoder_preset="ultrafast", audio_from=bogus_audio) as w:
            w.write(video_frames(1)[0])
    one_line(e.value)
    assert sorted(os.listdir(tmp_path)) == ["bogus.wav"]


def test_check_output_path_errors(tmp_path, clips):
    with pytest.raises(OutputError) as e:
        check_output_path(tmp_path / "no such folder" / "out.mp4", [])
    assert "does not exist" in one_line(e.value)
    with pytest.raises(OutputError) as e:
        check_output_path(clips["ntsc"], [clips["ntsc"]])
    assert "input" in one_line(e.value)
    link = tmp_path / "link.mp4"
    link.symlink_to(clips["ntsc"])
    with pytest.raises(OutputError):
        check_output_path(link, [clips["ntsc"]])
    with pytest.raises(OutputError) as e:
        check_output_path(tmp_path / "out.avi", [])
    assert ".mp4" in one_line(e.value)
    with pytest.raises(OutputError):
        check_output_path(tmp_path / "out.mp4", [], allowed={"image"})
    check_output_path(tmp_path / "out.mp4", [clips["ntsc"]])  # fine
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OutputError) as e:
                check_output_path(ro / "out.mp4", [])
            assert "not writable" in one_line(e.value)
        finally:
            ro.chmod(0o700)


def test_odd_file_names_round_trip(tmp_path, clips):
    folder = tmp_path / "dir with space"
    folder.mkdir()
    out = folder / "-dream 'quoted' \"double\" ünï 夢.mp4"
    with FrameWriter(out, NTSC, (160, 120), encoder_preset="ultrafast", audio_from=clips["av"]) as w:
        for f in iter_frames(clips["av"], max_frames=10):
            w.write(f)
    info = probe(out)
    assert info.has_audio and info.fps == NTSC
    assert sum(1 for _ in iter_frames(out)) == 10
    img_out = folder / "still 'é' 夢.png"
    write_image(img_out, video_frames(1)[0])
    assert np.array_equal(read_image(img_out), video_frames(1)[0])
    assert sorted(p.name for p in folder.iterdir()) == sorted([out.name, img_out.name])


def test_write_image_formats(tmp_path):
    img = video_frames(1, 32, 24)[0]
    for ext in (".png", ".jpg", ".webp"):
        p = tmp_path / f"x{ext}"
        write_image(p, img)
        back = read_image(p)
        assert back.shape == img.shape
        assert np.abs(back.astype(int) - img).mean() < (0.01 if ext == ".png" else 6)
    with pytest.raises(OutputError):
        write_image(tmp_path / "x.bmpx", img)
    with pytest.raises(OutputError):
        write_image(tmp_path / "missing" / "x.png", img)
    assert sorted(os.listdir(tmp_path)) == ["x.jpg", "x.png", "x.webp"]
