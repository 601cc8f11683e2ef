"""The work folder beside an output: finished frames and the state needed to resume exactly.

Layout of ``<output>.dreamvideo-work/``:
    lock                held (flock) by the render writing this output, with its process id inside;
                        the kernel drops the lock when that process ends, however it ends
    state.json          {"digest", "input", "frames_done"}, replaced atomically after each frame
    frames/000001.png   every finished frame, lossless, so a resume re-encodes them and continues
                        the chain from the last one exactly as an uninterrupted run would.

The chain always continues from the uint8 frame (what was saved), and every frame's random seed
depends only on the settings' seed and the frame index, so resumed frames equal uninterrupted ones.
Changed settings (another digest) or another input (by content, with the guide image and mask the
settings name) never mix with old frames: the folder is emptied. A resume trusts only what it
verifies: a state of the wrong shape starts over, and finished frames count only up to the first one
that is missing, truncated or of another size.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .decode import read_image
from .encode import free_bytes, human_bytes, write_error, write_image
from .errors import BusyError, DiskFullError, DreamVideoError, InputError, OutputError
from .files import sibling_name, write_atomic

# Inputs up to this size are hashed whole (a few hundred ms at most); larger ones by their size and
# _SAMPLES evenly spaced blocks, first and last included, which any re-encode or other clip changes.
_FULL_HASH_MAX = 64 * 1024 * 1024  # bytes
_SAMPLES = 16
_BLOCK = 1024 * 1024  # bytes per sampled block
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with
_LOCK_NAME = "lock"


def work_dir_for(output: Path) -> Path:
    """Where an output's work folder lives: beside it, named after it (shortened when too long)."""
    output = Path(output)
    name = output.name.rstrip("/") or "output"
    return output.parent / sibling_name(name, "", ".dreamvideo-work")


def content_hash(path: Path) -> str:
    """SHA-256 of a file's content: all of it up to 64 MiB, else its size and 16 spread 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= _FULL_HASH_MAX:
            for block in iter(lambda: fh.read(_BLOCK), b""):
                h.update(block)
            return "sha256:" + h.hexdigest()
        h.update(str(size).encode())
        for i in range(_SAMPLES):
            fh.seek((size - _BLOCK) * i // (_SAMPLES - 1))
            h.update(fh.read(_BLOCK))
    return "sha256-sampled:" + h.hexdigest()


def input_identity(path: Path | None, what: str = "input") -> dict[str, Any] | None:
    """Size and content hash of an input: another input (even of the same size and mtime, as after
    ``cp -p``) restarts the render; the same bytes under another name or time do not.
    ``what`` names the file in the error (input, guide, mask)."""
    if path is None:
        return None
    p = Path(path)
    try:
        return {"size": p.stat().st_size, "content": content_hash(p)}
    except OSError as err:
        raise InputError(f"{what} {str(p)!r} cannot be read ({err.strerror}): check the file") from None


CONTROL_FILES = ("guide", "mask")  # dream settings naming files whose content shapes every frame


def control_identity(settings: Any) -> dict[str, Any]:
    """The guide image's and mask's identities (``input_identity``) by setting name, for those set.

    The settings digest holds their paths only: a guide or mask replaced under the same name must
    restart a resumed render as another input does, so it joins the work folder's input identity.
    """
    d = settings.dream
    return {name: input_identity(Path(getattr(d, name)), name) for name in CONTROL_FILES if getattr(d, name)}


def with_controls(source: Any, settings: Any) -> Any:
    """A work folder's input identity ``source`` with the guide's and mask's (``control_identity``)
    added under their names; ``source`` itself when neither is set (older work folders still resume)."""
    files = control_identity(settings)
    if not files:
        return source
    return {**source, **files} if isinstance(source, dict) and "input" in source else {"input": source, **files}


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a complete PNG file (header and end chunk present), else None. Reads 40 bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 24 + len(_PNG_END):
                return None
            fh.seek(-len(_PNG_END), os.SEEK_END)
            tail = fh.read()
    except OSError:
        return None
    if head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR" or tail != _PNG_END:
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def frame_bytes(size: tuple[int, int]) -> int:
    """A generous estimate of one finished frame's PNG, in bytes: dreamed detail barely compresses."""
    w, h = size
    return w * h * 3 + 1024


class WorkDir:
    """Finished frames and resume state of one render; holds the output's lock while open."""

    def __init__(self, output: Path, digest: str, source: dict[str, Any] | None, *, root: Path | None = None):
        """root: the folder to use instead of the output's own work folder (one segment of a split render)."""
        self.output = Path(output)
        self.root = Path(root) if root is not None else work_dir_for(output)
        self.frames_dir = self.root / "frames"
        self.digest = digest  # settings digest; another one means start over
        self.source = source  # input identity; another one means start over
        self.frames_done = 0  # frames 0 .. frames_done-1 are finished on disk
        self.restarted_reason: str | None = None  # set when old work was discarded, for a note
        self.resume_note: str | None = None  # set when damaged frames cut the resume short, for a note
        self.total_frames: int | None = None  # frames the render will have, once known (for disk-full messages)
        self.frame_size: tuple[int, int] | None = None  # (width, height) of a frame, once known
        self._lock_fd: int | None = None

    # -- one writer per output -------------------------------------------------------------------
    def _lock(self) -> None:
        """Take the output's lock, or BusyError naming the process that holds it."""
        import fcntl

        path = self.root / _LOCK_NAME
        while True:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise write_error(path, err) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise BusyError(
                    f"output {str(self.output)!r} is being rendered by another process ({holder}): "
                    "wait for it to finish, stop it, or choose another output"
                ) from None
            # The holder before us may have removed the folder (its render finished) between our
            # open and our flock: then this lock is on a deleted file, so take the new one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        except OSError:
            pass  # the lock holds without its note
        self._lock_fd = fd

    def release(self) -> None:
        """Let another render of this output start (the kernel also does this when the process ends)."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def __del__(self) -> None:  # a driver that forgot to release must not block the next render
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except Exception:  # noqa: BLE001  # at interpreter exit even `os` may be gone: never a message
                pass

    # -- state -----------------------------------------------------------------------------------
    def open(self, resume: bool = True) -> int:
        """Take the lock, load state (or start fresh). Returns how many finished frames can be reused.

        BusyError when another process renders this output; nothing of its work is touched then.
        """
        existed = self.root.exists()
        self._lock()
        try:
            if existed:
                self._load(resume)
            self.frames_dir.mkdir(parents=True, exist_ok=True)
            if self.frames_done == 0:
                self._write_state()
        except BaseException:
            self.release()
            raise
        return self.frames_done

    def _load(self, resume: bool) -> None:
        state: Any = None
        with contextlib.suppress(OSError, ValueError, RecursionError):
            state = json.loads((self.root / "state.json").read_text(encoding="utf-8"))
        done = state.get("frames_done") if isinstance(state, dict) else None
        if not resume:
            self.restarted_reason = "--no-resume: starting over"
        elif not (self.root / "state.json").exists() and not self._has_frames():
            pass  # a folder with nothing to resume (a render stopped before its first frame)
        elif state is None:
            self.restarted_reason = "the work folder had no readable state: starting over"
        elif not isinstance(state, dict) or isinstance(done, bool) or not isinstance(done, int) or done < 0:
            self.restarted_reason = (
                f"the work folder's state ({str(self.root / 'state.json')!r}) is damaged: starting over"
            )
        elif state.get("digest") != self.digest:
            self.restarted_reason = "settings changed since the interrupted render: starting over"
        elif state.get("input") != self.source:
            self.restarted_reason = (
                f"{_changed(state.get('input'), self.source)} since the interrupted render: starting over"
            )
        else:
            self.frames_done = self._verified(done)
        if self.restarted_reason:
            self._clear()

    def _has_frames(self) -> bool:
        return self.frames_dir.is_dir() and any(self.frames_dir.iterdir())

    def _verified(self, claimed: int) -> int:
        """Finished frames that are really on disk: complete PNGs of one size, in order from the first."""
        size = None
        for index in range(claimed):
            got = _png_size(self.frame_path(index))
            if got is None or (size is not None and got != size):
                why = (
                    "missing"
                    if not self.frame_path(index).exists()
                    else ("truncated or damaged" if got is None else f"{got[0]}x{got[1]}, not {size[0]}x{size[1]}")
                )
                self.resume_note = (
                    f"finished frame {index + 1} of the interrupted render is {why}: "
                    f"resuming from frame {index + 1} ({index} finished frames kept)"
                )
                return index
            size = got
        if claimed:  # the chain continues from the last frame: it must decode, not only look complete
            try:
                self.load_frame(claimed - 1)
            except Exception:  # noqa: BLE001  # any decode failure means: not a usable frame
                self.resume_note = (
                    f"finished frame {claimed} of the interrupted render does not decode: "
                    f"resuming from frame {claimed} ({claimed - 1} finished frames kept)"
                )
                return claimed - 1
        return claimed

    def _clear(self) -> None:
        """Empty the folder for a fresh start, keeping the lock file (another render may be waiting on it)."""
        for entry in list(self.root.iterdir()) if self.root.is_dir() else []:
            if entry.name == _LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
        self.frames_done = 0

    def frame_path(self, index: int) -> Path:
        """PNG of frame ``index`` (0-based); zero-padded so names sort as numbers do."""
        return self.frames_dir / f"{index + 1:06d}.png"

    def load_frame(self, index: int) -> np.ndarray:
        """A finished frame, HxWx3 uint8 RGB. A frame that no longer decodes (damaged after it was
        checked) cuts the state back to it, so running the command again redoes it and what follows."""
        try:
            return read_image(self.frame_path(index))
        except DreamVideoError:
            if index < self.frames_done:
                self.frames_done = index
                self._write_state()
            raise InputError(
                f"finished frame {index + 1} of the interrupted render is damaged: run the same "
                f"command again to resume from it (or use --no-resume to start over)"
            ) from None

    def plan(self, total_frames: int | None, frame_size: tuple[int, int], copies: int = 1) -> str | None:
        """Record what the render will write; a note when the disk looks too small for it, else None.

        copies: how many times a finished frame is stored (2 for a PNG-frames output on the same disk).
        """
        self.total_frames, self.frame_size = total_frames, frame_size
        if not total_frames:
            return None
        need = max(total_frames - self.frames_done, 0) * frame_bytes(frame_size) * copies
        free = free_bytes(self.root)
        if free is not None and need > free:
            return (
                f"the render may need about {human_bytes(need)} beside {str(self.output)!r} "
                f"({total_frames} frames) and the disk has {human_bytes(free)} free: free space or render "
                "elsewhere (finished frames are kept if it fills up)"
            )
        return None

    def _need(self, index: int) -> str:
        if not self.total_frames or not self.frame_size:
            return ""
        return human_bytes(max(self.total_frames - index, 1) * frame_bytes(self.frame_size))

    def save_frame(self, index: int, frame: np.ndarray) -> None:
        """Store a finished frame, then record it in the state (so a kill never counts a half file)."""
        try:
            write_image(self.frame_path(index), frame)
        except DiskFullError:
            raise write_error(
                self.frame_path(index), OSError(errno.ENOSPC, "No space left on device"), self._need(index)
            ) from None
        except OutputError:
            self._check_still_there()
            raise
        self.frames_done = index + 1
        self._write_state()

    def _check_still_there(self) -> None:
        """OutputError naming the work folder when it was removed under the running render."""
        if not self.frames_dir.is_dir():
            where = "its folder" if not self.output.parent.is_dir() else "the work folder"
            raise OutputError(
                f"{where} {str(self.root)!r} was removed while the render was writing to it, with "
                f"its finished frames: run the command again to start over"
            ) from None

    def _write_state(self) -> None:
        state = {"digest": self.digest, "input": self.source, "frames_done": self.frames_done}
        try:
            write_atomic(self.root / "state.json", json.dumps(state))
        except OSError as err:  # out of space or inodes, or the folder removed under us
            if err.errno == errno.ENOENT:
                self._check_still_there()
            raise write_error(self.root / "state.json", err, self._need(self.frames_done)) from None

    @contextlib.contextmanager
    def discard_if_empty(self) -> Iterator[None]:
        """On any exception before a first finished frame, remove the folder: leave no trace.
        On any exception, release the lock (a batch runs the next render in this process)."""
        try:
            yield
        except BaseException:
            if self.frames_done == 0:
                self.remove()
            self.release()
            raise

    def remove(self) -> None:
        """Delete the folder once the output is complete, then release the lock."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.release()


def _changed(old: Any, new: Any) -> str:
    """What differs between two work-folder input identities, in words ("the guide image changed")."""
    if isinstance(old, dict) and isinstance(new, dict):
        names = {"guide": "the guide image", "mask": "the mask"}
        moved = [names[k] for k in CONTROL_FILES if old.get(k) != new.get(k)]
        if moved and all(old.get(k) == new.get(k) for k in set(old) | set(new) if k not in CONTROL_FILES):
            return " and ".join(moved) + " changed"
    return "the input changed"


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "process unknown"


__all__ = [
    "WorkDir",
    "work_dir_for",
    "input_identity",
    "control_identity",
    "with_controls",
    "content_hash",
    "frame_bytes",
    "CONTROL_FILES",
]
