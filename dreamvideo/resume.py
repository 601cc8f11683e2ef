"""The work folder beside an output: finished frames and the state needed to resume exactly.

Layout of ``<output>.dreamvideo-work/``:
    state.json          {"digest", "input", "frames_done", ...}, replaced atomically after each frame
    frames/000001.png   every finished frame, lossless, so a resume re-encodes them and continues
                        the chain from the last one exactly as an uninterrupted run would.

The chain always continues from the uint8 frame (what was saved), and every frame's random seed
depends only on the settings' seed and the frame index, so resumed frames equal uninterrupted ones.
Changed settings (another digest) or another input never mix with old frames: the folder is wiped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .files import write_atomic


def work_dir_for(output: Path) -> Path:
    """Where an output's work folder lives: beside it, named after it."""
    output = Path(output)
    name = output.name.rstrip("/") or "output"
    return output.parent / f"{name}.dreamvideo-work"


def input_identity(path: Path | None) -> dict[str, Any] | None:
    """Path, size and mtime of an input: a changed input restarts the render."""
    if path is None:
        return None
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class WorkDir:
    """Finished frames and resume state of one render."""

    def __init__(self, output: Path, digest: str, source: dict[str, Any] | None, *, root: Path | None = None):
        """root: the folder to use instead of the output's own work folder (one segment of a split render)."""
        self.root = Path(root) if root is not None else work_dir_for(output)
        self.frames_dir = self.root / "frames"
        self.digest = digest  # settings digest; another one means start over
        self.source = source  # input identity; another one means start over
        self.frames_done = 0  # frames 0 .. frames_done-1 are finished on disk
        self.restarted_reason: str | None = None  # set when old work was discarded, for a note

    def open(self, resume: bool = True) -> int:
        """Load state (or start fresh). Returns how many finished frames can be reused."""
        state_path = self.root / "state.json"
        if self.root.exists():
            state = None
            try:
                state = json.loads(state_path.read_text())
            except (OSError, ValueError):
                pass
            if not resume:
                self.restarted_reason = "--no-resume: starting over"
            elif state is None:
                self.restarted_reason = "the work folder had no readable state: starting over"
            elif state.get("digest") != self.digest:
                self.restarted_reason = "settings changed since the interrupted render: starting over"
            elif state.get("input") != self.source:
                self.restarted_reason = "the input changed since the interrupted render: starting over"
            else:
                done = int(state.get("frames_done", 0))
                # Trust only frames that are really on disk, in order.
                while done > 0 and not self.frame_path(done - 1).is_file():
                    done -= 1
                self.frames_done = done
            if self.restarted_reason:
                shutil.rmtree(self.root, ignore_errors=True)
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        if self.frames_done == 0:
            self._write_state()
        return self.frames_done

    def frame_path(self, index: int) -> Path:
        """PNG of frame ``index`` (0-based); zero-padded so names sort as numbers do."""
        return self.frames_dir / f"{index + 1:06d}.png"

    def load_frame(self, index: int) -> np.ndarray:
        """A finished frame, HxWx3 uint8 RGB."""
        from .decode import read_image

        return read_image(self.frame_path(index))

    def save_frame(self, index: int, frame: np.ndarray) -> None:
        """Store a finished frame, then record it in the state (so a kill never counts a half file)."""
        from .encode import write_image

        write_image(self.frame_path(index), frame)
        self.frames_done = index + 1
        self._write_state()

    def _write_state(self) -> None:
        state = {"digest": self.digest, "input": self.source, "frames_done": self.frames_done}
        write_atomic(self.root / "state.json", json.dumps(state))

    @contextlib.contextmanager
    def discard_if_empty(self) -> Iterator[None]:
        """On any exception before a first finished frame, remove the folder: leave no trace."""
        try:
            yield
        except BaseException:
            if self.frames_done == 0:
                self.remove()
            raise

    def remove(self) -> None:
        """Delete the folder once the output is complete."""
        shutil.rmtree(self.root, ignore_errors=True)
