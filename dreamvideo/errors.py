"""Typed errors. Each message is one line that names the problem and the fix.

The library raises these; only ``cli.py`` turns them into a printed line and an exit status.
"""

from __future__ import annotations


class DreamVideoError(Exception):
    """Base class: a user-facing problem (bad input, bad settings, missing weights)."""


class InputError(DreamVideoError):
    """An input file is missing, empty, unreadable or not what was expected."""


class OutputError(DreamVideoError):
    """An output path cannot be written (folder missing or read-only, same as the input, ...)."""


class DiskFullError(OutputError):
    """The disk (its space, its inodes, or the user's quota) ran out while writing."""


class BusyError(OutputError):
    """Another process is rendering the same output right now."""


class ConfigError(DreamVideoError):
    """A setting, preset, manifest, schedule or option value is invalid."""


class ModelError(DreamVideoError):
    """An unknown model or layer, or weights that cannot be had or do not fit the model."""


class MediaError(DreamVideoError):
    """ffmpeg or OpenCV failed on a file that looked valid."""


class OutputKindError(OutputError, ConfigError):
    """An output of a kind this command does not write (a .png for a video): both a bad option value
    and an output that cannot be written, so callers catching either see it."""


class ClusterError(DreamVideoError):
    """Ray is not installed, no cluster can be reached, or a worker cannot see the shared storage."""
