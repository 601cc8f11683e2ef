"""The layer gallery: one image dreamed on each dreamable layer of a model (or on N channels of one
layer), as a contact sheet of labelled tiles, so a user sees what each layer does before a long render.

Every tile is dreamed by ONE engine whose objective has a term per layer (or channel); each tile
switches one term on and the others off through the engine's term weights, so the compiled step is
traced once for the whole sheet. Tiles are labelled with the spec to type after ``--layers``.
The library never prints: progress goes through ``on_progress(done, total)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import Settings
from .errors import ConfigError

LABEL_HEIGHT = 22  # pixels of the caption strip under each tile
MAX_CHANNELS = 256  # tiles of one layer's channels at most (a sheet, not a dump)


@dataclass
class SheetResult:
    """What a gallery produced."""

    output: Path  # the PNG (or JPEG/WebP) written
    labels: list[str]  # each tile's spec, in grid order (row by row)
    grid: tuple[int, int]  # (columns, rows)
    tile: tuple[int, int]  # (width, height) of a tile's picture, without its caption strip
    model: str  # the model that dreamed
    seconds: float  # wall time


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for ``n`` tiles: near square, wider than tall."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return cols, max(1, math.ceil(n / cols))


def pick_channels(width: int, n: int) -> list[int]:
    """``n`` channel indices spread evenly over a layer of ``width`` channels (all when n >= width)."""
    if n >= width:
        return list(range(width))
    return sorted({int(round(i * (width - 1) / max(n - 1, 1))) for i in range(n)})


def label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile (HxWx3 uint8) with a black caption strip of LABEL_HEIGHT px below it, ``text`` in white."""
    import cv2

    h, w = tile.shape[:2]
    out = np.zeros((h + LABEL_HEIGHT, w, 3), np.uint8)
    out[:h] = tile
    scale = 0.45
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > w - 4:  # long names on small tiles: shrink to fit
        scale *= (w - 4) / tw
    cv2.putText(out, text, (3, h + LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def assemble(tiles: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Labelled tiles (all the same size) in a near-square grid, row by row; empty cells black."""
    cols, rows = grid_shape(len(tiles))
    cells = [label_tile(t, s) for t, s in zip(tiles, labels)]
    ch, cw = cells[0].shape[:2]
    sheet = np.zeros((rows * ch, cols * cw, 3), np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        sheet[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = cell
    return sheet


def render_layers(
    input: str | Path,
    output: str | Path,
    settings: Settings,
    *,
    layer: str | None = None,
    channels: int | None = None,
    on_progress: Callable[[int, int | None], None] = lambda *_: None,
    on_note: Callable[[str], None] = lambda *_: None,
) -> SheetResult:
    """Dream ``input`` once per dreamable layer of the settings' model (or, with ``channels``, on that
    many channels of ``layer``, default the model's deepest default layer) and write the labelled
    contact sheet to ``output``. The settings' own ``layers`` are not used."""
    import dataclasses

    from .controls import Controls
    from .decode import read_image, resize_max_side
    from .dream import DreamParams, get_engine
    from .encode import check_output_path, output_kind, write_image
    from .objective import parse_layer_spec

    start = time.perf_counter()
    input, output = Path(input), Path(output)
    if output_kind(output) != "image":
        raise ConfigError(f"output {str(output)!r} is not an image: use .png, .jpg or .webp")
    check_output_path(output, [input])
    if channels is not None and not 1 <= channels <= MAX_CHANNELS:
        raise ConfigError(f"--channels must be within 1..{MAX_CHANNELS}, got {channels}")
    if layer is not None and channels is None:
        raise ConfigError("--layer picks the layer whose channels are shown: give --channels N too")
    rgb = resize_max_side(read_image(input), settings.dream.max_side).astype(np.float32)
    d = dataclasses.replace(settings.dream, layers=None, dream_class=None, guide=None)
    probe_engine = get_engine(d)  # the model, loaded once; its spec says which layers there are
    spec = probe_engine.spec
    for n in probe_engine.loaded.notes:
        on_note(n)
    if channels is None:
        labels = list(spec.layers)
    else:
        name = layer if layer is not None else spec.default_layers[-1]
        if parse_layer_spec(name)[1] is not None or "=" in name:
            raise ConfigError(f"--layer {name!r} must be a layer name without :CHANNEL or =WEIGHT, "
                              f"e.g. {name.split(':')[0].split('=')[0]}")
        width = int(get_engine(dataclasses.replace(d, layers=(name,))).feature_model.outputs[0].shape[-1])
        labels = [f"{name}:{c}" for c in pick_channels(width, channels)]
    engine = get_engine(dataclasses.replace(d, layers=tuple(labels)))
    controls = Controls.open(settings)
    on_progress(0, len(labels))
    tiles = []
    for i in range(len(labels)):
        weights = tuple(1.0 if j == i else 0.0 for j in range(len(labels)))
        params = DreamParams.from_config(d, term_weights=weights)
        out = engine.dream(rgb, params, seed=d.seed)
        if controls is not None:
            out = controls.apply(out, rgb)
        tiles.append(np.clip(np.rint(out), 0, 255).astype(np.uint8))
        on_progress(i + 1, len(labels))
    sheet = assemble(tiles, labels)
    write_image(output, sheet)
    return SheetResult(output, labels, grid_shape(len(labels)), (rgb.shape[1], rgb.shape[0]), engine.name,
                       time.perf_counter() - start)


__all__ = ["SheetResult", "render_layers", "assemble", "label_tile", "grid_shape", "pick_channels", "LABEL_HEIGHT"]
