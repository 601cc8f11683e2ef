"""Atomic file writes: one temporary-naming scheme and one write-then-rename, for every module.

A file is written under a hidden temporary name in its own folder (same filesystem, so the rename
is atomic) and moved onto its final name with ``os.replace`` only when complete: a reader, a kill
or a full disk never leaves a half-written file under the final name. The temporary name is

    .NAME.TAG.SUFFIX        e.g. dream.mp4 -> .dream.mp4.partial.mp4

where SUFFIX is the final name's extension unless the writer needs another one (Keras insists on
``.weights.h5``). The name is fixed, so a crashed run's leftover is found and replaced by the next
run; ``unique=True`` adds the process id for files that several processes may write at once
(shared caches), where two writers must not share one temporary file.

A leaf module: it imports nothing from the package.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


# Bytes in one file name on ext4, XFS, btrfs, tmpfs, APFS (NTFS: 255 UTF-16 units, which is more).
NAME_MAX = 255


def sibling_name(base: str, prefix: str = "", suffix: str = "", *, limit: int = NAME_MAX) -> str:
    """``prefix + base + suffix``, shortened when it would not fit in one file name (``limit`` bytes).

    Derived names (the work folder, temporary names, the settings JSON) add to the user's name, so
    a legal 250-character output name would give illegal siblings: the end of ``base`` then gives
    way to ``~`` and a hash of the whole of it, so two long names stay apart and the result is stable.
    """
    name = prefix + base + suffix
    if len(os.fsencode(name)) <= limit:
        return name
    tag = "~" + hashlib.sha256(os.fsencode(base)).hexdigest()[:12]
    room = limit - len(os.fsencode(prefix + suffix + tag))
    head = base
    while head and len(os.fsencode(head)) > room:
        head = head[:-1]  # by characters, so a multi-byte character is never cut in half
    return prefix + head + tag + suffix


def temp_sibling(final: str | Path, tag: str = "partial", *, suffix: str | None = None, unique: bool = False) -> Path:
    """The hidden temporary name next to ``final``: ``.NAME.TAG[-PID]SUFFIX`` (see the module doc),
    shortened with a hash when a long final name would make it too long for the filesystem."""
    final = Path(final)
    pid = f"-{os.getpid()}" if unique else ""
    return final.parent / sibling_name(final.name, ".", f".{tag}{pid}{final.suffix if suffix is None else suffix}")


def remove_quietly(path: str | Path) -> None:
    """Delete a file or folder if it is there; never raises (cleanup after a failure)."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(
    final: str | Path, tag: str = "partial", *, suffix: str | None = None, unique: bool = False
) -> Iterator[Path]:
    """``with atomic_path(p) as tmp:`` write ``tmp`` in the block; on success it replaces ``p``,
    on any exception it is deleted and ``p`` is untouched. OSError from the rename propagates."""
    final = Path(final)
    tmp = temp_sibling(final, tag, suffix=suffix, unique=unique)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        remove_quietly(tmp)
        raise


def write_atomic(final: str | Path, data: bytes | str, *, unique: bool = False) -> None:
    """Write ``data`` (text as UTF-8) to ``final`` atomically. OSError on failure (nothing left behind)."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(final, unique=unique) as tmp, open(tmp, "wb") as fh:
        fh.write(blob)
