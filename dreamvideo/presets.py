"""Presets: TOML files that name complete looks.

A preset is data, parsed with tomllib and never evaluated: a top-level ``description`` and the
sections of config.py (``[dream]``, ``[video]``, ``[zoom]``, ``[encode]``), plus optional top-level
``schedule`` / ``react`` lists. Unknown keys are an error naming the file and the key.

Where presets are found, first match wins: a path to a .toml file; the user's folder
($DREAMVIDEO_PRESETS, else ~/.config/dreamvideo/presets); the presets shipped in the package.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings, merge
from .errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent / "preset_files"  # top-level presets/ links here


@dataclass(frozen=True)
class Preset:
    """A parsed preset file."""

    name: str  # file stem, e.g. "classic"
    path: Path  # where it was read from
    description: str  # one line
    data: dict[str, Any]  # the settings tables, description removed


def user_dir() -> Path:
    """The user's own presets folder."""
    env = os.environ.get("DREAMVIDEO_PRESETS")
    return Path(env).expanduser() if env else Path.home() / ".config" / "dreamvideo" / "presets"


def _search_dirs() -> list[Path]:
    return [user_dir(), PACKAGE_DIR]


# A preset is a few hundred bytes and a manifest of thousands of jobs well under a megabyte: a larger
# file is the wrong file (a video renamed .toml, a log), refused before it is read whole.
MAX_TOML_BYTES = 4 * 1024 * 1024
# Presets and manifests nest 3 levels (a job's [job.video] table holding a list); tomllib recurses
# once per level and Python stops it near 1000 with a RecursionError, so deeper is refused here.
MAX_TOML_DEPTH = 16
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, which some Windows editors write


def _depth(data: Any) -> int:
    """How deeply tables and lists nest in parsed TOML (a flat table is 1), without recursion."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        node, level = todo.pop()
        deepest = max(deepest, level)
        if level > MAX_TOML_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        todo.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file as data; ConfigError (one line, with the file) when it cannot be read or is
    not a sane settings file: not UTF-8 text, over MAX_TOML_BYTES, nested over MAX_TOML_DEPTH levels,
    a duplicate key or any other syntax error. A UTF-8 byte order mark is accepted."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)  # bounded: a FIFO or /dev/zero cannot exhaust memory
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found: check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML file: check the path") from None
    except OSError as err:
        why = err.strerror or err.__class__.__name__
        raise ConfigError(f"{path}: cannot be read ({why}): check the file") from None
    if len(raw) > MAX_TOML_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_TOML_BYTES // (1024 * 1024)} MiB, far beyond any preset or "
            "manifest: check that this is the right file"
        )
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file (byte {err.start} is not UTF-8): give a TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        first = str(err).splitlines()[0] if str(err) else "syntax error"
        raise ConfigError(f"{path}: not valid TOML ({first}): fix the syntax") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: nested too deeply to be a preset or manifest (over {MAX_TOML_DEPTH} levels): check the file"
        ) from None
    if _depth(data) > MAX_TOML_DEPTH:
        raise ConfigError(
            f"{path}: nested too deeply to be a preset or manifest (over {MAX_TOML_DEPTH} levels): check the file"
        )
    return data


def find_preset(name: str) -> Path:
    """The file for a preset name (or a path to a .toml); ConfigError listing known presets."""
    as_path = Path(name).expanduser()
    if name.endswith(".toml") or os.sep in name:
        if as_path.is_file():
            return as_path
        raise ConfigError(f"preset file {name!r} not found: check the path")
    for folder in _search_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"unknown preset {name!r}: use one of {', '.join(p.name for p in list_presets())}")


def read_preset(name: str) -> Preset:
    """Parse a preset file (not yet merged into settings)."""
    path = find_preset(name)
    data = read_toml(path)
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: description must be a string")
    return Preset(name=path.stem, path=path, description=description.strip(), data=data)


def load_preset(name: str | None, base: Settings | None = None) -> Settings:
    """Settings = defaults (or ``base``) < preset ``name``. None means the defaults alone.

    Args:
        name: a preset name (see ``list_presets``), a path to a .toml preset, or None.
        base: the settings the preset applies on top of; None = the built-in defaults.

    Returns:
        The resolved Settings.

    Raises:
        ConfigError: an unknown preset or missing file, a file that is not valid TOML, or an unknown key
            or bad value (named with the file and the key).
    """
    base = base or Settings()
    if name is None:
        return base
    preset = read_preset(name)
    return merge(base, preset.data, source=str(preset.path))


def list_presets(on_skip: Callable[[str], None] | None = None) -> list[Preset]:
    """Every readable preset visible to the user, user ones shadowing shipped ones, sorted by name.

    A file that cannot be read as a preset is left out (a shipped preset of the same name then
    shows), and ``on_skip`` gets one line saying which file and why.

    Args:
        on_skip: called with one line per skipped file or unreadable folder (``on_skip(message)``);
            None = skipped silently.

    Returns:
        The presets (name, path, first line of the description; ``data`` left empty), sorted by name.
        Never raises for a bad file.
    """
    found: dict[str, Preset] = {}
    for folder in reversed(_search_dirs()):
        try:
            paths = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        except OSError as err:
            if on_skip is not None:
                on_skip(f"skipped the preset folder {str(folder)!r}: cannot be read ({err.strerror})")
            continue
        for path in paths:
            try:
                data = read_toml(path)
            except ConfigError as err:
                if on_skip is not None:
                    on_skip(f"skipped {err}")
                continue
            desc = data.get("description", "")
            desc = desc.strip().splitlines()[0] if isinstance(desc, str) and desc.strip() else ""
            found[path.stem] = Preset(path.stem, path, desc, {})
    return [found[k] for k in sorted(found)]
