"""dreamvideo: DeepDream for video, infinite zooms and overnight batches.

The public API is imported lazily so that ``import dreamvideo`` (and ``dreamvideo --help``) never
imports TensorFlow:

    >>> import dreamvideo
    >>> img = dreamvideo.dream_image(rgb_uint8, dreamvideo.Settings())
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Settings": ("dreamvideo.config", "Settings"),
    "DreamConfig": ("dreamvideo.config", "DreamConfig"),
    "VideoConfig": ("dreamvideo.config", "VideoConfig"),
    "ZoomConfig": ("dreamvideo.config", "ZoomConfig"),
    "EncodeConfig": ("dreamvideo.config", "EncodeConfig"),
    "load_preset": ("dreamvideo.presets", "load_preset"),
    "dream_image": ("dreamvideo.render", "dream_image"),
    "render_image": ("dreamvideo.render", "render_image"),
    "render_video": ("dreamvideo.render", "render_video"),
    "render_zoom": ("dreamvideo.zoom", "render_zoom"),
    "run_batch": ("dreamvideo.batch", "run_batch"),
    "DreamVideoError": ("dreamvideo.errors", "DreamVideoError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dreamvideo' has no attribute {name!r}")
