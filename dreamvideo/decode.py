"""Reading pixels and sound: images, video frames (upright, RGB) and audio samples.

Frames leave this module as HxWx3 uint8 RGB numpy arrays. Video is decoded with OpenCV's ffmpeg
backend, which turns frames upright by the file's display matrix (CAP_PROP_ORIENTATION_AUTO), so a
phone's portrait clip comes out portrait. The end of decoding is the truth about how many frames a
file has: header frame counts lie, and a truncated file yields what decodes without an exception.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import InputError, MediaError
from .probe import (
    audio_cut_args,
    check_input_file,
    ffmpeg_exe,
    ffmpeg_last_line,
    ffmpeg_path_arg,
    open_video_capture,
    probe,
    require_video,
)

# A frame counts as "at or after start" within this many seconds; OpenCV timestamps are doubles
# in milliseconds (frame 24 at 24000/1001 fps reads 1000.9999999 ms), far finer than any frame.
_TIME_EPS = 1e-4  # seconds
# Seek this far before ``start`` and decode forward, so an inexact seek still lands before it.
_PREROLL = 1.0  # seconds
_JPEG_MAGIC = b"\xff\xd8\xff"
# A failed read is a broken frame if a good one follows; this many failed reads in a row is the end
# of the stream. A failed read costs microseconds at the real end (measured: 200 reads in 3 ms), and
# one failed read may already have skipped hundreds of broken packets inside OpenCV.
_MAX_BROKEN_RUN = 64  # reads


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Scale any depth OpenCV decodes to uint8: 16-bit by /257 (65535 -> 255), float from 0..1."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.dtype == np.int16:  # signed 16-bit TIFF: shift -32768..32767 to 0..65535
        return _to_uint8((img.astype(np.int32) + 32768).astype(np.uint16))
    if img.dtype == np.int8:
        return (img.astype(np.int16) + 128).astype(np.uint8)
    raise InputError(f"image pixels of type {img.dtype} are not supported: save it as 8- or 16-bit PNG or JPEG")


def read_image(path: str | Path) -> np.ndarray:
    """Load an image file as HxWx3 uint8 RGB.

    Grayscale becomes three equal channels; 16-bit is scaled to 8-bit; an alpha channel is
    composited onto WHITE (transparent areas often hide black or garbage colour, and a dream of a
    logo on white is what users expect). JPEG EXIF orientation is applied.
    InputError for a missing, empty or undecodable file.
    """
    import cv2

    p = check_input_file(path, "image")
    # np.fromfile + imdecode rather than imread: any file name works, whatever its characters.
    data = np.fromfile(str(p), dtype=np.uint8)
    if data[:3].tobytes() == _JPEG_MAGIC:
        # JPEG has no alpha: decode once, honouring EXIF orientation (IMREAD_COLOR does).
        img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    else:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16-bit, ignores EXIF
        if img is not None and not (img.ndim == 3 and img.shape[2] in (2, 4)):
            # No alpha: decode again with orientation applied (PNG/WebP/TIFF may carry EXIF).
            img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.size == 0:
        raise InputError(f"{str(p)!r} is not an image OpenCV can read: use PNG, JPEG, WebP, BMP or TIFF")
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels in (2, 4):
        color, alpha = img[:, :, :-1], img[:, :, -1:]
        # Composite in float on white: out = c*a + 1*(1-a), in the image's own range.
        top = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
        a = alpha.astype(np.float32) / top
        img = (color.astype(np.float32) * a + top * (1.0 - a)).astype(np.float32) / top
        img = np.clip(img, 0.0, 1.0)
        channels -= 1
    img = _to_uint8(img)
    if channels == 1:
        img = np.repeat(img, 3, axis=2)
    else:
        img = img[:, :, ::-1]  # OpenCV decodes BGR
    return np.ascontiguousarray(img)


def resize_max_side(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side`` pixels (INTER_AREA); never upscales.

    Returns ``img`` itself when no change is needed. Sizes are not forced even: encode.py pads.
    """
    if max_side is None:
        return img
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1 pixel, got {max_side}")
    h, w = img.shape[:2]
    new_w, new_h = scaled_size(w, h, max_side)
    if (new_w, new_h) == (w, h):
        return img
    import cv2

    return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) after ``resize_max_side``: the longer side at most ``max_side``, never larger."""
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open_capture(p: Path):
    import cv2

    cap = open_video_capture(p)
    if not cap.isOpened():
        cap.release()
        # Say why: probe() raises for unreadable files, require_video() for audio-only ones.
        require_video(probe(p))
        raise MediaError(
            f"OpenCV cannot decode the video in {str(p)!r}: re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
        )
    # Upright frames by the display matrix; on by default, set so a changed default cannot bite.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


@dataclass
class DecodeStats:
    """What decoding met, filled in as frames are yielded (pass one to iter_frames to read it)."""

    decoded: int = 0  # frames that decoded and were yielded
    repeated: int = 0  # broken frames (a read that failed between good ones) replaced by a neighbour


def iter_timed_frames(
    path: str | Path,
    *,
    max_side: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Like ``iter_frames`` but yields ``(t, frame)``, t = the frame's timestamp in seconds from
    the start of the file (not from ``start``). Timestamps can be uneven (dropped-frame AVIs)."""
    if start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    p = check_input_file(path)
    # Open now, not at the first next(): a bad file raises where the caller asked for frames.
    cap = _open_capture(p)
    return _timed_frames(p, cap, max_side, start, duration, max_frames, stats if stats is not None else DecodeStats())


def _timed_frames(
    p: Path, cap, max_side: int | None, start: float, duration: float | None, max_frames: int | None,
    stats: DecodeStats,
) -> Iterator[tuple[float, np.ndarray]]:
    import cv2

    end = None if duration is None else start + duration
    try:
        if max_frames is not None and max_frames < 1:
            return
        cap_first = None
        if start > _PREROLL:
            # OpenCV seeks by a frame number computed from fps, which is wrong for files with
            # uneven timestamps (tree.avi: asked 1 s, landed at 12.6 s). Seek early, then check
            # the first frame's time: if it is already past start, decode from the beginning.
            cap.set(cv2.CAP_PROP_POS_MSEC, (start - _PREROLL) * 1000.0)
            ok, bgr = cap.read()
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if ok and t <= start + _TIME_EPS:
                cap_first = (ok, bgr, t)
            else:
                cap.release()
                cap = _open_capture(p)
        # Frames without a timestamp read 0 ms; step those by the nominal frame period instead.
        cv_fps = cap.get(cv2.CAP_PROP_FPS)
        period = 1.0 / cv_fps if cv_fps and cv_fps > 0 else 1.0 / 25.0  # seconds
        count = 0
        prev_t: float | None = None
        last_bgr = None  # the last frame that decoded, repeated in place of broken ones
        broken = 0  # failed reads since the last good frame
        while True:
            if cap_first is not None:
                ok, bgr, t = cap_first
                cap_first = None
            else:
                ok, bgr = cap.read()
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not ok or bgr is None:
                broken += 1
                if broken >= _MAX_BROKEN_RUN:
                    return  # end of stream, or a truncated file: what decoded is what there is
                continue
            # A run of failed reads between good frames is a damaged patch: each failed read stands
            # for one frame, replaced by the previous good one (the next, at the very start), so
            # the frames keep their place on the timeline and the sound stays in sync.
            if prev_t is None:  # broken frames before the first good one: its copies, just before it
                times = [max(t - (broken - i) * period, 0.0) for i in range(broken)]
            else:
                times = [prev_t + (i + 1) * period for i in range(broken)]
            slots = [(last_bgr if last_bgr is not None else bgr, True, ts) for ts in times] + [(bgr, False, t)]
            broken = 0
            last_bgr = bgr
            for frame_bgr, repeat, t_slot in slots:
                if not repeat and prev_t is not None and t_slot <= prev_t:
                    t_slot = prev_t + period
                prev_t = t_slot
                if t_slot < start - _TIME_EPS:
                    continue
                if end is not None and t_slot >= end - _TIME_EPS:
                    return
                rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
                if repeat:
                    stats.repeated += 1
                else:
                    stats.decoded += 1
                yield t_slot, resize_max_side(rgb, max_side)
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
    finally:
        cap.release()


def iter_frames(
    path: str | Path,
    *,
    max_side: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[np.ndarray]:
    """Decode a video's frames as upright HxWx3 uint8 RGB arrays, in order.

    start, duration: seconds; the frames yielded are those whose timestamp t satisfies
    start <= t < start + duration. max_side: downscale so the longer side is at most this many
    pixels. max_frames: stop after this many. Decoding stops at the real end of the stream (header
    frame counts are ignored); a truncated file yields what decodes, without an exception. A frame
    that fails to decode between good ones is replaced by the previous good frame, so the timeline
    holds; ``stats`` (if given) counts decoded and repeated frames as they are yielded.
    InputError for a missing/empty/unreadable file or one without video. Close the iterator (or
    exhaust it) to release the file at once.
    """
    timed = iter_timed_frames(path, max_side=max_side, start=start, duration=duration, max_frames=max_frames,
                              stats=stats)
    return _frames_only(timed)


def _frames_only(timed: Iterator[tuple[float, np.ndarray]]) -> Iterator[np.ndarray]:
    try:
        for _, frame in timed:
            yield frame
    finally:
        timed.close()  # type: ignore[attr-defined]  # releases the capture now, not at garbage collection


def read_audio(
    path: str | Path,
    sample_rate: int = 22050,
    start: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """The sound of a file as float32 mono samples in [-1, 1] at ``sample_rate`` Hz.

    start, duration: seconds. Channels are averaged (ffmpeg's -ac 1 downmix). InputError if the file
    has no audio stream; MediaError if ffmpeg fails while decoding.
    """
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be >= 1 Hz, got {sample_rate}")
    if start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    info = probe(path)
    if not info.has_audio:
        raise InputError(f"{str(info.path)!r} has no audio stream: give a file with sound, or leave audio out")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    before, trim = audio_cut_args(start, duration)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *before,
        "-i", ffmpeg_path_arg(info.path),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-af", trim,
        "-ac", "1", "-ar", str(int(sample_rate)),
        "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as err:
        # stdout is read to the end by run(); stderr goes to a file so it can never block ffmpeg.
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, check=False)
        if proc.returncode != 0:
            last = ffmpeg_last_line(err, f"exit status {proc.returncode}")
            raise MediaError(f"ffmpeg could not decode the audio of {str(info.path)!r}: {last}")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    return np.clip(samples, -1.0, 1.0)
