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


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file as data; ConfigError (one line, with the file) when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found: check the path") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}): fix the syntax") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err.__class__.__name__}): check the file") from None


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
        The resolved Settings. ConfigError names the file and key of a bad preset.
    """
    base = base or Settings()
    if name is None:
        return base
    preset = read_preset(name)
    return merge(base, preset.data, source=str(preset.path))


def list_presets() -> list[Preset]:
    """Every preset visible to the user, user ones shadowing shipped ones, sorted by name.

    Returns:
        A list of Preset (name, path, description), sorted by name.
    """
    found: dict[str, Preset] = {}
    for folder in reversed(_search_dirs()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                try:
                    data = read_toml(path)
                    desc = str(data.get("description", ""))
                except ConfigError as err:
                    desc = f"(unreadable: {err})"
                found[path.stem] = Preset(path.stem, path, desc, {})
    return [found[k] for k in sorted(found)]
