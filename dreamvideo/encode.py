"""Writing frames: videos (H.264, VP9), GIFs, PNG folders and single images, all atomically.

Every output is first written under a hidden temporary name in the output's own folder
(``.NAME.partial.mp4``) and renamed at the end, so the final name only ever holds a complete file:
an exception, Ctrl-C or an ffmpeg failure leaves the final path untouched and no temp files behind.

Output kind by the path:
  .mp4 .mov .mkv   H.264 (libx264), yuv420p, BT.709, -crf/-preset; +faststart for .mp4/.mov; AAC audio
  .webm            VP9 (libvpx-vp9, -crf N -b:v 0); Opus audio
  .gif             palette GIF (palettegen + paletteuse over a lossless FFV1 intermediate), loops forever
  folder           PNG sequence frame_000001.png ...: a path ending in '/', an existing folder, or a
                   path without an extension
Frames are HxWx3 uint8 RGB. Odd sizes are padded by one replicated edge pixel for yuv420p video
(never resized). The frame rate is the exact Fraction given (``-r 24000/1001``).
"""

from __future__ import annotations

import errno
import os
import shutil
import re
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import IO, Collection, Sequence

import numpy as np

from .config import ENCODER_PRESETS
from .errors import ConfigError, DiskFullError, MediaError, OutputError, OutputKindError
from .files import NAME_MAX, atomic_path, remove_quietly, temp_sibling
from .probe import audio_cut_args, ffmpeg_exe, ffmpeg_last_line, ffmpeg_path_arg
from .timing import parse_fps

H264_SUFFIXES = (".mp4", ".mov", ".mkv")
VIDEO_SUFFIXES = (*H264_SUFFIXES, ".webm", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Output kinds, as returned by output_kind(); what a video driver (video, zoom) may write.
OUTPUT_KINDS = ("h264", "vp9", "gif", "frames", "image")
VIDEO_KINDS = ("h264", "vp9", "gif", "frames")
X264_PRESETS = ENCODER_PRESETS  # the settings' list: config checks it at merge
# libvpx-vp9 has no presets: the nearest -cpu-used (0 = slowest/best .. 5 = fastest with -deadline good).
_VP9_CPU_USED = {
    "ultrafast": 5, "superfast": 5, "veryfast": 5, "faster": 4, "fast": 3,
    "medium": 2, "slow": 1, "slower": 0, "veryslow": 0,
}  # fmt: skip
_SUFFIX_KIND = {
    **{s: "h264" for s in H264_SUFFIXES}, ".webm": "vp9", ".gif": "gif", **{s: "image" for s in IMAGE_SUFFIXES}
}  # fmt: skip
_FRAME_NAME_RE = re.compile(r"^frame_\d{6,}\.png$")
# BT.709 conversion and tags: what players assume for HD; both OpenCV and ffmpeg read it back right.
_BT709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"]
# How each kind reads in an error message ("output 'x.png' is a still image: ...").
_KIND_WORDS = {"h264": "a video", "vp9": "a video", "gif": "a GIF", "frames": "a PNG-frames folder",
               "image": "a still image"}


def _is_folder_path(path: str | Path) -> bool:
    s = os.fspath(path)
    try:
        is_dir = Path(s).is_dir()
    except OSError:  # a name too long for the filesystem, a loop of links: not an existing folder
        is_dir = False
    return s.endswith(("/", os.sep)) or is_dir or Path(s).suffix == ""


def output_kind(path: str | Path) -> str:
    """'h264', 'vp9', 'gif', 'frames' (PNG folder) or 'image' for an output path; OutputError if unknown.

    A folder is a path ending in '/', an existing directory, or a path without an extension
    (pathlib drops a trailing '/', so ``Path("out/")`` must still mean a folder).
    """
    if _is_folder_path(path):
        return "frames"
    suffix = Path(path).suffix.lower()
    if suffix in H264_SUFFIXES:
        return "h264"
    if suffix == ".webm":
        return "vp9"
    if suffix == ".gif":
        return "gif"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    raise OutputError(
        f"output {os.fspath(path)!r} has an unknown extension {suffix!r}: use one of "
        f"{', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}, or a folder name ending in / for PNG frames"
    )


def encoded_size(path: str | Path, size: tuple[int, int], *, kind: str | None = None) -> tuple[int, int]:
    """The (width, height) frames of ``size`` will have in the file at ``path`` (of ``kind`` when the
    caller resolved it: a "run.6/" folder's Path has lost its slash).

    H.264 and VP9 (yuv420p halves chroma resolution) need even sizes: an odd side is padded by one
    replicated edge pixel. GIFs and PNG frames keep the size as it is.
    """
    w, h = int(size[0]), int(size[1])
    return (w + w % 2, h + h % 2) if (kind or output_kind(path)) in ("h264", "vp9") else (w, h)


def _only_old_frames(folder: Path) -> bool:
    """True if ``folder`` is empty or holds only a previous run's frame_NNNNNN.png files."""
    return all(_FRAME_NAME_RE.match(entry.name) and entry.is_file() for entry in folder.iterdir())


def describe_kinds(kinds: Collection[str]) -> str:
    """The extensions (and 'a folder/') that give ``kinds``, for messages: '.mp4, .mov, ... or a folder/'."""
    exts = [e for e, k in _SUFFIX_KIND.items() if k in kinds]
    if "frames" in kinds:
        return f"{', '.join(exts)} or a folder/ for PNG frames" if exts else "a folder/ for PNG frames"
    return ", ".join(exts)


def check_output_path(
    out: str | Path,
    inputs: Sequence[str | Path],
    *,
    allowed: Collection[str] | None = None,
    kind: str | None = None,
) -> str:
    """The one check of an output target; returns its kind (see ``OUTPUT_KINDS``).

    Raises OutputError unless ``out`` can be written: its folder exists and is writable, it is none
    of ``inputs`` (compared after resolving links, and as hard links), and its kind is known.
    allowed: output kinds accepted here (e.g. ``{"image"}`` for a still); None = all; another kind
    raises OutputKindError (also a ConfigError: the option value is wrong) listing what is accepted.
    kind: the kind when the caller already knows it (a manifest's "run.6/" is a folder although
    pathlib drops the '/'); default: ``output_kind(out)``.
    An existing folder is accepted as a PNG-sequence target only if it is empty or holds only
    frame_NNNNNN.png files (a previous run's, which are replaced whole).
    """
    if kind is None:
        kind = output_kind(out)
    elif kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(OUTPUT_KINDS)}, got {kind!r}")
    if allowed is not None and kind not in allowed:
        raise OutputKindError(f"output {os.fspath(out)!r} is {_KIND_WORDS[kind]}: "
                              f"this writes {describe_kinds(allowed)}")
    p = Path(out)
    if p.name in ("", ".", ".."):  # '.', '..', '/', 'a/..': a folder that holds the work folder and more
        raise OutputError(f"output {os.fspath(out)!r} is a folder that holds other things: name a new folder "
                          "for PNG frames, e.g. -o frames/, or a file, e.g. -o dreamed.mp4")
    if len(os.fsencode(p.name)) > NAME_MAX:
        raise OutputError(f"output name {p.name[:40]!r}... is {len(os.fsencode(p.name))} bytes long; a file name "
                          f"holds at most {NAME_MAX}: choose a shorter name")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"output folder {str(parent)!r} does not exist: create it first or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {str(parent)!r} is not writable: choose a folder you can write to")
    for inp in inputs:
        ip = Path(inp)
        same = p.resolve() == ip.resolve()
        if not same and p.exists() and ip.exists():
            same = os.path.samefile(p, ip)  # hard links
        if same:
            raise OutputError(f"output {str(p)!r} is the input file: choose another output name")
    if kind == "frames":
        if p.exists() and not p.is_dir():
            raise OutputError(f"output {str(p)!r} is a file, not a folder: choose a folder name for PNG frames")
        if p.is_dir() and not _only_old_frames(p):
            raise OutputError(f"output folder {str(p)!r} holds other files: "
                              "choose a new or empty folder for PNG frames")
    elif p.is_dir():
        raise OutputError(f"output {str(p)!r} is a folder: choose a file name, or end it with / for PNG frames")
    return kind


def check_crf(kind: str, crf: int) -> None:
    """The quality range depends on the codec (``kind`` from output_kind): H.264 takes crf 0..51,
    VP9 (.webm) 0..63. The settings allow 0..63; this is the per-output half of the rule, checked
    before any frame is dreamed."""
    limit = 51 if kind == "h264" else 63
    if not 0 <= int(crf) <= limit:
        raise ConfigError(f"crf {crf} is outside 0..{limit} for this {kind} output: "
                          "use 0..51 for .mp4/.mov/.mkv, 0..63 for .webm")


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as df -H and file managers show them)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def free_bytes(folder: Path) -> int | None:
    """Free bytes for an unprivileged user on the disk holding ``folder`` (its nearest existing parent)."""
    try:
        return shutil.disk_usage(_existing(folder)).free
    except OSError:
        return None


def _existing(folder: Path) -> Path:
    p = Path(os.path.abspath(folder))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write a whole file; a full disk raises OSError(ENOSPC) (numpy's tofile says only "requested and
    written" with no errno, which cannot be told apart from other faults)."""
    with open(path, "wb") as fh:
        fh.write(data)


def write_error(path: str | Path, err: OSError, need: str = "") -> OutputError:
    """The one-line error for an OSError met while writing ``path``: a full disk says it is full
    (and, given ``need``, how much the render still needs); a folder removed under a running
    render says so; a name too long for the filesystem says that."""
    p = Path(path)
    folder = p.parent
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        needs = f"; the render needs about {need} more" if need else ""
        what = "is full"
        try:
            st = os.statvfs(_existing(folder))
            if st.f_files and st.f_favail == 0:
                what = "has no free inodes left (it holds too many files)"
                needs = "; the render needs a file for each frame still to do" if need else ""
            else:
                what = f"is full ({human_bytes(st.f_bavail * st.f_frsize)} free)"
        except (OSError, AttributeError):
            pass
        if err.errno == errno.EDQUOT:
            what = "is over your disk quota"
        return DiskFullError(f"the disk holding {str(folder)!r} {what} while writing {p.name!r}{needs}: "
                             "free space there, or render to another disk")
    if err.errno == errno.ENOENT and not folder.is_dir():
        return OutputError(f"the folder {str(folder)!r} was removed while the render was writing to it: "
                           "create it again (or choose another output) and run the command again")
    if err.errno == errno.ENAMETOOLONG:
        return OutputError(f"the name {p.name!r} is too long for this filesystem: choose a shorter output name")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {str(p)!r} ({err.strerror}): choose a folder you can write to")
    return OutputError(f"cannot write {str(p)!r} ({err.strerror or err}): check the disk and the folder")


_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")  # ffmpeg prints strerror()


def ffmpeg_failure(path: Path, what: str, line: str) -> Exception:
    """The error for ffmpeg failing while writing ``path``: a full disk or a removed folder is named as
    such (ffmpeg's own line says only "Error writing trailer" or "No such file"), else MediaError."""
    if any(text in line for text in _DISK_FULL_TEXT):
        return write_error(path, OSError(errno.ENOSPC, "No space left on device"))
    if not Path(path).parent.is_dir():
        return write_error(path, OSError(errno.ENOENT, "No such file or directory"))
    return MediaError(f"ffmpeg failed while {what}: {line}")


def _run_ffmpeg(args: list[str], what: str, path: Path) -> None:
    """Run ffmpeg to completion; MediaError with the last line of its stderr on failure."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ffmpeg_failure(path, what, ffmpeg_last_line(err))


class FrameWriter:
    """Write HxWx3 uint8 RGB frames to a video, GIF or PNG folder; use as a context manager.

    Leaving the ``with`` block normally finishes the file (muxes audio, renames temp -> final);
    leaving it with an exception aborts: temp files are deleted and the final path is untouched.
    Without ``with``, call ``close()`` (or ``abort()``) yourself.
    """

    frames_written: int

    def __init__(
        self,
        path: str | Path,
        fps: Fraction | int | str | float,
        size: tuple[int, int],
        *,
        crf: int = 18,
        encoder_preset: str = "medium",
        audio_from: str | Path | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
        kind: str | None = None,
    ) -> None:
        """path: output (see module doc); fps: exact frames per second; size: (width, height) of
        the frames in pixels; crf: quality (lower = better); encoder_preset: x264 speed preset;
        audio_from: a file whose sound is muxed in (none of its audio = a silent output), starting
        at audio_start seconds, at most audio_duration seconds, cut to the video's length.
        Audio is ignored for GIF and PNG outputs, which cannot hold it. kind: the output kind when
        the caller has resolved it (check_output_path's), else it is read from ``path``."""
        self.kind = check_output_path(path, [audio_from] if audio_from is not None else [], allowed=VIDEO_KINDS,
                                      kind=kind)
        if encoder_preset not in X264_PRESETS:
            raise ConfigError(f"encoder_preset {encoder_preset!r} is unknown: use one of {', '.join(X264_PRESETS)}")
        check_crf(self.kind, crf)
        w, h = (int(size[0]), int(size[1]))
        if w < 1 or h < 1:
            raise ValueError(f"size must be positive (width, height), got {size}")
        self.path = Path(path)
        self.fps = parse_fps(fps)
        self.size = (w, h)
        self.crf = int(crf)
        self.encoder_preset = encoder_preset
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_start = float(audio_start)
        self.audio_duration = audio_duration
        self.frames_written = 0
        # yuv420p halves chroma resolution: H.264/VP9 need even sizes; pad by one edge pixel.
        self._enc_size = encoded_size(self.path, (w, h), kind=self.kind)
        self._proc: subprocess.Popen | None = None
        self._err: IO[bytes] | None = None
        self._temps: list[Path] = []
        self._closed = False
        if self.kind == "frames":
            self._frames_dir = temp_sibling(self.path, "partial", suffix="")
        elif self.kind == "gif":
            self._stage = temp_sibling(self.path, "frames.partial").with_suffix(".mkv")
        elif self.audio_from is not None:
            self._stage = temp_sibling(self.path, "video.partial")
        else:
            self._stage = temp_sibling(self.path, "partial")
        self._final_temp = temp_sibling(self.path, "partial")

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # -- writing ---------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.kind == "frames":
            remove_quietly(self._frames_dir)  # a crashed run's leftovers
            try:
                self._frames_dir.mkdir()
            except OSError as err:
                raise write_error(self._frames_dir, err) from None
            self._temps.append(self._frames_dir)
            return
        w, h = self._enc_size
        rate = f"{self.fps.numerator}/{self.fps.denominator}"
        args = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", rate, "-i", "pipe:0",
            "-an",
        ]  # fmt: skip
        if self.kind == "h264":
            args += [
                "-vf", "scale=out_color_matrix=bt709:out_range=tv", "-pix_fmt", "yuv420p", *_BT709,
                "-c:v", "libx264", "-preset", self.encoder_preset, "-crf", str(self.crf),
            ]  # fmt: skip
            if self.path.suffix.lower() in (".mp4", ".mov"):
                args += ["-movflags", "+faststart"]
        elif self.kind == "vp9":
            args += [
                "-vf", "scale=out_color_matrix=bt709:out_range=tv", "-pix_fmt", "yuv420p", *_BT709,
                "-c:v", "libvpx-vp9", "-crf", str(self.crf), "-b:v", "0", "-row-mt", "1",
                "-deadline", "good", "-cpu-used", str(_VP9_CPU_USED[self.encoder_preset]),
            ]  # fmt: skip
        else:  # gif: lossless intermediate, palette passes at close()
            args += ["-c:v", "ffv1", "-pix_fmt", "bgr0"]
        args.append(ffmpeg_path_arg(self._stage))
        self._temps.append(self._stage)
        self._err = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall ffmpeg
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)

    def write(self, frame: np.ndarray) -> None:
        """Append one HxWx3 uint8 RGB frame; every frame must have the size given at open."""
        if self._closed:
            raise ValueError("write() on a closed FrameWriter")
        w, h = self.size
        if frame.dtype != np.uint8 or frame.shape != (h, w, 3):
            raise ValueError(f"frame must be {h}x{w}x3 uint8 RGB, got {frame.shape} {frame.dtype}")
        if self._proc is None and not self._temps:
            self._start()
        ew, eh = self._enc_size
        if (ew, eh) != (w, h):
            frame = np.pad(frame, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")
        if self.kind == "frames":
            import cv2

            ok, buf = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]))
            if not ok:
                raise MediaError(f"OpenCV could not encode frame {self.frames_written + 1} as PNG")
            frame_path = self._frames_dir / f"frame_{self.frames_written + 1:06d}.png"
            try:
                write_bytes(frame_path, buf.data)
            except OSError as err:  # a full disk: typed, and the writer aborts cleanly
                raise write_error(frame_path, err) from None
        else:
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).data)
            except (BrokenPipeError, OSError):
                self._proc.wait()
                msg = ffmpeg_last_line(self._err) if self._err else "ffmpeg stopped"
                self.abort()
                raise ffmpeg_failure(self.path, f"writing {str(self.path)!r}", msg) from None
        self.frames_written += 1

    # -- finishing -------------------------------------------------------------------------------
    def _finish_encoder(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        if rc != 0:
            raise ffmpeg_failure(self.path, f"writing {str(self.path)!r}", ffmpeg_last_line(self._err))

    def _mux_audio(self) -> None:
        assert self.audio_from is not None
        video_seconds = self.frames_written / self.fps
        length = float(video_seconds)
        if self.audio_duration is not None:
            length = min(length, float(self.audio_duration))
        # The sound is cut to the video's length by atrim (sample-exact; see audio_cut_args).
        # -shortest is not used: it would also cut the video when the sound is shorter.
        before, trim = audio_cut_args(self.audio_start, length)
        args = [
            "-i", ffmpeg_path_arg(self._stage), *before, "-i", ffmpeg_path_arg(self.audio_from),
            "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-filter:a", trim,
        ]  # fmt: skip
        if self.kind == "vp9":
            args += ["-c:a", "libopus", "-b:a", "160k"]
        else:
            args += ["-c:a", "aac", "-b:a", "192k"]
            if self.path.suffix.lower() in (".mp4", ".mov"):
                args += ["-movflags", "+faststart"]
        args.append(ffmpeg_path_arg(self._final_temp))
        self._temps.append(self._final_temp)
        _run_ffmpeg(args, f"adding the sound of {str(self.audio_from)!r} to {str(self.path)!r}", self.path)

    def _make_gif(self) -> None:
        palette = temp_sibling(self.path, "palette.partial").with_suffix(".png")
        self._temps.append(palette)
        self._temps.append(self._final_temp)
        # Two passes over the intermediate: memory stays bounded however long the GIF is.
        _run_ffmpeg(
            ["-i", ffmpeg_path_arg(self._stage), "-vf", "palettegen", "-frames:v", "1", "-update", "1",
             ffmpeg_path_arg(palette)],
            "making the GIF palette", self.path,
        )  # fmt: skip
        _run_ffmpeg(
            ["-i", ffmpeg_path_arg(self._stage), "-i", ffmpeg_path_arg(palette), "-lavfi", "paletteuse",
             "-loop", "0", ffmpeg_path_arg(self._final_temp)],
            f"writing {str(self.path)!r}", self.path,
        )  # fmt: skip

    def _publish_frames(self) -> None:
        final = self.path
        if final.is_dir():
            # Replace a previous run's frames folder whole (check_output_path vetted its contents).
            old = final.parent / f".{final.name}.old"
            remove_quietly(old)
            os.replace(final, old)
            os.replace(self._frames_dir, final)
            remove_quietly(old)
        else:
            os.replace(self._frames_dir, final)

    def close(self) -> None:
        """Finish the output and move it to its final name. MediaError if nothing was written or
        ffmpeg failed (the final path is then left untouched and temp files are removed)."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise MediaError(
                    f"no frames were written to {str(self.path)!r}: the input gave no frames (check start/duration)"
                )
            if self.kind == "frames":
                self._publish_frames()
            else:
                self._finish_encoder()
                if self.kind == "gif":
                    self._make_gif()
                elif self.audio_from is not None:
                    self._mux_audio()
                os.replace(self._final_temp, self.path)
        except OSError as err:  # the folder removed, the disk full at the rename
            self.abort()
            raise write_error(self.path, err) from None
        except BaseException:
            self.abort()
            raise
        self._cleanup()

    def abort(self) -> None:
        """Stop without producing the output: kill ffmpeg, delete temp files; final path untouched."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._proc is not None:
            try:
                if self._proc.stdin:
                    self._proc.stdin.close()
            except OSError:
                pass
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        self._closed = True
        for temp in self._temps:
            remove_quietly(temp)
        self._temps.clear()
        if self._err is not None:
            self._err.close()
            self._err = None


# The public name the drivers use: the writer class itself (a wrapper repeated its whole signature).
open_writer = FrameWriter


def write_image(path: str | Path, img: np.ndarray, *, quality: int = 95) -> None:
    """Save an HxWx3 uint8 RGB image as PNG, JPEG or WebP (by extension), atomically: written to a
    hidden temp name in the same folder, then renamed. quality: JPEG/WebP quality 1..100."""
    import cv2

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(
            f"image output {str(p)!r} has an unknown extension {suffix!r}: use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if not p.resolve().parent.is_dir():  # outputs were checked up front: the folder went away since
        raise write_error(p, OSError(errno.ENOENT, "No such file or directory"))
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got {img.shape} {img.dtype}")
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    ok, buf = cv2.imencode(suffix, np.ascontiguousarray(img[:, :, ::-1]), params)
    if not ok:
        raise MediaError(f"OpenCV could not encode {str(p)!r} as {suffix}")
    try:
        with atomic_path(p) as temp:
            write_bytes(temp, buf.data)
    except OSError as err:  # permission, a full disk, a vanished folder
        raise write_error(p, err) from None
