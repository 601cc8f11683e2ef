"""What is in a media file: size, exact frame rate, rotation, duration, audio.

Two sources are combined, because neither is enough alone (there is no ffprobe in imageio-ffmpeg):

* ``ffmpeg -hide_banner -i FILE`` stderr: streams (Video/Audio), duration, display rotation, the
  container kind (still image or not). Its "23.98 fps" is rounded to 2 decimals, so not exact.
* OpenCV's ``CAP_PROP_FPS``: a double of the stream's rational rate, which is turned back into an
  exact Fraction (24000/1001 stays 24000/1001), and the header frame count.

Only this module, decode.py and encode.py touch media files.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

from .errors import InputError, MediaError
from .timing import snap_fps

# ffmpeg demuxers that read a single still image (fps is meaningless for them).
_STILL_FORMATS = ("image2",)
_STILL_SUFFIX = "_pipe"  # png_pipe, jpeg_pipe, webp_pipe, ... (but not "gif": GIFs animate)

_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from ", re.M)
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+.*?: (?P<kind>Video|Audio): (?P<rest>.*)$", re.M)
_SIZE_RE = re.compile(r", (?P<w>\d{1,6})x(?P<h>\d{1,6})[ ,]")
_FPS_RE = re.compile(r", (?P<fps>\d+(?:\.\d+)?)(?P<k>k?) fps")
_TBR_RE = re.compile(r", (?P<fps>\d+(?:\.\d+)?)(?P<k>k?) tbr")
# "Display Matrix: rotation of -90.00 degrees" (ffmpeg >= 7) / "displaymatrix: rotation of ..."
# (older): degrees COUNTER-clockwise, as ffmpeg's autorotate turns the frame to make it upright.
_MATRIX_RE = re.compile(r"(?i)display ?matrix: rotation of (?P<deg>-?\d+(?:\.\d+)?) degrees")
# Old-style "rotate : 90" metadata tag: degrees CLOCKWISE.
_ROTATE_TAG_RE = re.compile(r"^\s*rotate\s*:\s*(?P<deg>-?\d+)\s*$", re.M)


@dataclass(frozen=True)
class MediaInfo:
    """What probe() found in a file. Sizes are of the upright frames that decode.py yields."""

    path: Path
    width: int  # upright display width in pixels (after rotation; sample aspect ratio ignored)
    height: int  # upright display height in pixels
    fps: Fraction | None  # exact frames per second; None for still images / audio-only
    rotation: int  # degrees clockwise applied to decoded frames to make them upright: 0/90/180/270
    duration: float | None  # seconds; None when the container does not say
    has_audio: bool
    has_video: bool  # False for audio-only files (a cover picture does not count as video)
    frame_count: int | None  # ESTIMATE from the header (may lie; decoding is the truth)

    @property
    def is_still(self) -> bool:
        """True for a single still image (PNG, JPEG, ...): a video stream without a frame rate."""
        return self.has_video and self.fps is None


def ffmpeg_exe() -> str:
    """Path of the ffmpeg bundled with imageio-ffmpeg (there is no ffprobe)."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the bundled binary is missing or not executable
        raise MediaError("ffmpeg is missing: use `pip install --force-reinstall imageio-ffmpeg`") from None


def check_input_file(path: str | Path, what: str = "input") -> Path:
    """The path as a Path if it names a non-empty readable file; InputError otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {str(p)!r} not found: check the path")
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a folder, not a file: give a video or image file")
    try:
        size = p.stat().st_size
    except OSError as err:
        raise InputError(f"{what} {str(p)!r} cannot be read ({err.strerror}): check its permissions") from None
    if size == 0:
        raise InputError(f"{what} {str(p)!r} is empty (0 bytes): the file is broken or still being copied")
    if not os.access(p, os.R_OK):
        raise InputError(f"{what} {str(p)!r} is not readable: check its permissions")
    return p


def ffmpeg_path_arg(path: Path) -> str:
    """A path as an ffmpeg argument: absolute, so a name starting with '-' is not an option and
    'name:with:colons' is not taken for a protocol."""
    return "file:" + os.path.abspath(path)


# ffmpeg inside OpenCV logs decoder chatter ("[h264 @ 0x...] Invalid NAL unit size") straight to
# stderr, where it breaks progress bars and fills batch logs: broken frames are counted and reported
# by decode.py instead. OpenCV reads this variable once, when it opens its first capture.
_OPENCV_FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


def _quiet_opencv() -> None:
    """Silence OpenCV's own warnings and its ffmpeg's log, unless the user asked for them (env)."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", _OPENCV_FFMPEG_QUIET)
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _utf8_safe(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name byte that is not UTF-8 (a surrogate escape)
        return False
    return True


def open_video_capture(path: Path):
    """An OpenCV ``VideoCapture`` (ffmpeg backend) of ``path``; check ``isOpened()``.

    The name reaches ffmpeg as an absolute path, so 'a:b.mp4' is a file, not the protocol 'a'.
    OpenCV crashes (segmentation fault) on a name that is not valid UTF-8, so such a file is
    opened through a symlink with a plain name in a private temporary folder, removed at once
    (ffmpeg holds the file open from then on).
    """
    import cv2

    _quiet_opencv()
    name = os.path.abspath(path)
    if _utf8_safe(name):
        return cv2.VideoCapture(name, cv2.CAP_FFMPEG)
    folder = tempfile.mkdtemp(prefix="dreamvideo-")
    try:
        link = os.path.join(folder, "input" + (Path(name).suffix if _utf8_safe(Path(name).suffix) else ""))
        os.symlink(name, link)
        return cv2.VideoCapture(link, cv2.CAP_FFMPEG)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


STDERR_TAIL = 4000  # bytes at the end of ffmpeg's stderr searched for its last message


def ffmpeg_last_line(err: IO[bytes] | bytes | str, default: str = "no message from ffmpeg") -> str:
    """The last non-empty line of ffmpeg's stderr (a file it wrote, or the text): its error message.

    Only the last STDERR_TAIL bytes of a file are read, so a chatty decoder costs nothing here.
    """
    if isinstance(err, (bytes, str)):
        text = err.decode("utf-8", "replace") if isinstance(err, bytes) else err
    else:
        err.seek(0, os.SEEK_END)
        err.seek(max(0, err.tell() - STDERR_TAIL))
        text = err.read().decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else default


def run_ffmpeg_info(path: Path) -> str:
    """ffmpeg's stderr description of ``path`` (``ffmpeg -i`` with no output always exits 1)."""
    with tempfile.TemporaryFile() as err:
        # stderr goes to a file, not a pipe, so a chatty file cannot fill a pipe and deadlock.
        try:
            subprocess.run(
                [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_path_arg(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=60,  # seconds; reading headers of a local file takes milliseconds
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MediaError(
                f"ffmpeg took over 60 s to read {str(path)!r}: is it on a stalled network drive?"
            ) from None
        err.seek(0)
        return err.read().decode("utf-8", "replace")


# Input seeking (-ss before -i) in AAC-in-MP4 lands on the packet AFTER the time asked (measured:
# 1.0 s gave 1.0217 s, ffmpeg 9), so audio is cut in two steps: a coarse input seek this many
# seconds early, then an exact sample-level trim of the decoded stream.
AUDIO_SEEK_MARGIN = 2.0  # seconds


def audio_cut_args(start: float, duration: float | None) -> tuple[list[str], str]:
    """ffmpeg arguments to read ``duration`` seconds of sound from ``start`` seconds, exactly.

    Returns (input options to put before ``-i``, an audio filter to apply to that input).
    """
    coarse = max(0.0, start - AUDIO_SEEK_MARGIN)
    before = ["-ss", f"{coarse:.6f}"] if coarse > 0 else []
    # After an input seek ffmpeg's timestamps count from `coarse`; atrim cuts in those.
    trim = f"atrim=start={start - coarse:.6f}"
    if duration is not None:
        trim += f":duration={duration:.6f}"
    return before, trim + ",asetpts=PTS-STARTPTS"


def _fps_from_text(text: str, k: str) -> float:
    return float(text) * (1000.0 if k else 1.0)


def _parse(path: Path, text: str) -> dict:
    m_in = _INPUT_RE.search(text)
    if m_in is None:
        raise InputError(
            f"{str(path)!r} is not a readable video or image ({ffmpeg_last_line(text, 'no message')}): check the file"
        )
    fmt = m_in.group("fmt")
    streams = list(_STREAM_RE.finditer(text))
    video = [s for s in streams if s.group("kind") == "Video" and "(attached pic)" not in s.group("rest")]
    audio = [s for s in streams if s.group("kind") == "Audio"]
    out: dict = {"format": fmt, "has_video": bool(video), "has_audio": bool(audio)}
    m_d = _DURATION_RE.search(text)
    out["duration"] = (
        int(m_d.group("h")) * 3600 + int(m_d.group("m")) * 60 + float(m_d.group("s")) if m_d else None
    )
    out["still"] = fmt in _STILL_FORMATS or fmt.endswith(_STILL_SUFFIX)
    if video:
        rest = video[0].group("rest")
        m_s = _SIZE_RE.search(rest + " ")
        out["size"] = (int(m_s.group("w")), int(m_s.group("h"))) if m_s else None
        m_f = _FPS_RE.search(rest) or _TBR_RE.search(rest)
        out["fps_text"] = _fps_from_text(m_f.group("fps"), m_f.group("k")) if m_f else None
        # Rotation side data / tag printed after the first video stream line, before the next stream.
        start = video[0].end()
        nxt = [s.start() for s in streams if s.start() > start]
        block = text[start : nxt[0] if nxt else len(text)]
        m_r = _MATRIX_RE.search(block)
        if m_r:
            rot = (-round(float(m_r.group("deg")))) % 360  # counter-clockwise -> clockwise
        else:
            m_t = _ROTATE_TAG_RE.search(block)
            rot = int(m_t.group("deg")) % 360 if m_t else 0
        out["rotation"] = rot if rot in (0, 90, 180, 270) else 0
    return out


def probe(path: str | Path) -> MediaInfo:
    """Describe a video, image or audio file.

    Raises InputError for a missing, empty or unreadable file. An audio-only file is not an error
    here (``has_video`` is False); call ``require_video(info)`` where frames are needed.
    """
    p = check_input_file(path)
    info = _parse(p, run_ffmpeg_info(p))
    if not info["has_video"]:
        return MediaInfo(p, 0, 0, None, 0, info["duration"], info["has_audio"], False, None)

    rotation = info["rotation"]
    size = info["size"]
    fps: Fraction | None = None
    frame_count: int | None = None
    if not info["still"]:
        import cv2

        cap = open_video_capture(p)
        try:
            if cap.isOpened():
                cv_fps = cap.get(cv2.CAP_PROP_FPS)
                n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
                frame_count = int(n) if n and n > 0 else None
                # Cross-check: OpenCV's double must agree with ffmpeg's 2-decimal print (0.01 fps).
                if cv_fps and cv_fps > 0 and (
                    info["fps_text"] is None or abs(cv_fps - info["fps_text"]) < 0.01 + 1e-3 * cv_fps
                ):
                    fps = snap_fps(cv_fps)
        finally:
            cap.release()
        if fps is None and info["fps_text"]:
            fps = snap_fps(info["fps_text"])
        if frame_count is None and fps is not None and info["duration"]:
            frame_count = round(info["duration"] * fps)
    else:
        frame_count = 1

    if size is None:
        raise InputError(
            f"{str(p)!r} has a video stream of unknown size: re-encode it, e.g. with ffmpeg -i IN OUT.mp4"
        )
    w, h = size
    if rotation in (90, 270):
        w, h = h, w
    duration = None if info["still"] else info["duration"]
    return MediaInfo(p, w, h, fps, rotation, duration, info["has_audio"], True, frame_count)


def require_video(info: MediaInfo) -> MediaInfo:
    """``info`` unchanged if the file has a video stream; InputError otherwise."""
    if not info.has_video:
        raise InputError(
            f"{str(info.path)!r} has no video stream: give a video or image file (use --audio for a sound track)"
        )
    return info


def require_moving_video(info: MediaInfo) -> MediaInfo:
    """``info`` unchanged if the file has moving pictures; InputError for audio only or a still image."""
    require_video(info)
    if info.is_still or info.fps is None:
        raise InputError(
            f"{str(info.path)!r} is a still image, not a video: dream it with `dreamvideo image`, "
            "or animate it with `dreamvideo zoom`"
        )
    return info
