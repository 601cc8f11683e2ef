"""dreamvideo: DeepDream for video, infinite zooms and overnight batches.

The public API, imported lazily so that ``import dreamvideo`` (and ``dreamvideo --help``) never
imports TensorFlow: a name's module is imported when the name is first used.

    import dreamvideo

    settings = dreamvideo.load_preset("fast-preview")
    result = dreamvideo.render_video("samples/beat.mp4", "dreamed.mp4", settings,
                                     on_progress=lambda done, total: print(done, "/", total))
    print(result.frames, result.width, result.height, result.model)

Settings: ``Settings`` (with ``DreamConfig``, ``VideoConfig``, ``ZoomConfig``, ``EncodeConfig``),
``load_preset``, ``list_presets``, ``merge``. Renders: ``dream_image`` (an array), ``render_image``,
``render_video``, ``render_zoom`` (files; each returns a ``RenderResult``). Batches:
``load_manifest`` -> ``Manifest`` -> ``run_batch`` -> ``BatchSummary``. Audio: ``analyze_file``
(``AudioFeatures``), ``plot_features``. Models: ``model_names``, ``install_weights``. Errors: every
library error is a ``DreamVideoError`` (``InputError``, ``OutputError``, ``ConfigError``,
``ModelError``, ``MediaError``), each a one-line message naming the problem and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "Settings": "dreamvideo.config",
    "DreamConfig": "dreamvideo.config",
    "VideoConfig": "dreamvideo.config",
    "ZoomConfig": "dreamvideo.config",
    "EncodeConfig": "dreamvideo.config",
    "merge": "dreamvideo.config",
    "load_preset": "dreamvideo.presets",
    "list_presets": "dreamvideo.presets",
    "dream_image": "dreamvideo.render",
    "render_image": "dreamvideo.render",
    "render_video": "dreamvideo.render",
    "RenderResult": "dreamvideo.toolkit",
    "render_zoom": "dreamvideo.zoom",
    "load_manifest": "dreamvideo.manifest",
    "run_batch": "dreamvideo.batch",
    "Manifest": "dreamvideo.manifest",
    "BatchSummary": "dreamvideo.batch",
    "analyze_file": "dreamvideo.audio",
    "plot_features": "dreamvideo.audio",
    "AudioFeatures": "dreamvideo.audio",
    "model_names": "dreamvideo.model",
    "install_weights": "dreamvideo.model",
    "DreamVideoError": "dreamvideo.errors",
    "InputError": "dreamvideo.errors",
    "OutputError": "dreamvideo.errors",
    "ConfigError": "dreamvideo.errors",
    "ModelError": "dreamvideo.errors",
    "MediaError": "dreamvideo.errors",
    "BusyError": "dreamvideo.errors",
    "DiskFullError": "dreamvideo.errors",
}

# A literal list, so that type checkers and linters read it (tests check it matches _LAZY).
__all__ = [
    "__version__",
    "Settings", "DreamConfig", "VideoConfig", "ZoomConfig", "EncodeConfig", "merge", "load_preset", "list_presets",
    "dream_image", "render_image", "render_video", "RenderResult", "render_zoom",
    "load_manifest", "run_batch", "Manifest", "BatchSummary",
    "analyze_file", "plot_features", "AudioFeatures", "model_names", "install_weights",
    "DreamVideoError", "InputError", "OutputError", "ConfigError", "ModelError", "MediaError", "BusyError",
    "DiskFullError",
]

if TYPE_CHECKING:  # type checkers and IDEs see the real names; at run time they load lazily
    from .audio import AudioFeatures, analyze_file, plot_features
    from .batch import BatchSummary, run_batch
    from .config import DreamConfig, EncodeConfig, Settings, VideoConfig, ZoomConfig, merge
    from .errors import (
        BusyError,
        ConfigError,
        DiskFullError,
        DreamVideoError,
        InputError,
        MediaError,
        ModelError,
        OutputError,
    )
    from .manifest import Manifest, load_manifest
    from .model import install_weights, model_names
    from .presets import list_presets, load_preset
    from .render import dream_image, render_image, render_video
    from .toolkit import RenderResult
    from .zoom import render_zoom


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dreamvideo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
