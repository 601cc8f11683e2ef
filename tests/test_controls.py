"""Creative controls with real weights (the bundled EfficientNet-Lite0): guide images, channels,
classes, original colours, masks (still and video), the layer gallery, and their bad inputs.

Sizes are tiny (64-128 px, one octave, few steps) so the file runs in about a minute; the figures
each assertion stands on are in the messages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dreamvideo.cli import app
from dreamvideo.config import DreamConfig
from dreamvideo.controls import to_ycc
from dreamvideo.dream import DreamParams, get_engine
from helpers import MEDIA, ffmpeg, need

runner = CliRunner()
MODEL = "efficientnet_lite0"
CHANNEL = 7  # of block4c (80 channels)
CLASS = 323  # monarch: not among fruits.jpg's top 5 (lemon, orange, ...)


def _read(path: Path) -> np.ndarray:
    from dreamvideo.decode import read_image

    return read_image(path).astype(np.float32)


def _small(name: str, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(_read(need(MEDIA / name)), size, interpolation=cv2.INTER_AREA).astype(np.float32)


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def _params(steps: int, **kw) -> DreamParams:
    return DreamParams(steps=steps, step_size=0.03, octaves=1, octave_scale=1.4, jitter=8, tile_size=512, **kw)


# --- objectives: one engine whose terms are switched by weights (one trace for the three tests) ----


@pytest.fixture(scope="module")
def combo():
    """Terms: block4c (layer), block4c:7 (channel), class 323 (logit); guided by starry_night.jpg."""
    guide = need(MEDIA / "starry_night.jpg")
    return get_engine(
        DreamConfig(model=MODEL, layers=("block4c", f"block4c:{CHANNEL}"), dream_class=CLASS, guide=str(guide))
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.mean(axis=(0, 1)), b.mean(axis=(0, 1))  # the layer's channel profile
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.slow
def test_guide_moves_features_toward_the_guide(combo):
    src = _small("fruits.jpg", (128, 128))
    guide = _small("starry_night.jpg", (128, 128))
    plain = combo.dream(src, _params(10, term_weights=(1.0, 0.0, 0.0), guide_weight=0.0))  # block4c alone
    guided = combo.dream(src, _params(10, term_weights=(1.0, 0.0, 0.0), guide_weight=1.0))
    g = combo.features(guide)["block4c"]
    before, unguided, toward = (_cosine(combo.features(x)["block4c"], g) for x in (src, plain, guided))
    msg = f"cosine to the guide: source {before:.3f}, unguided {unguided:.3f}, guided {toward:.3f}"
    print(msg)
    assert toward > unguided + 0.08 and toward > before + 0.05, msg


@pytest.mark.slow
def test_channel_rises_several_times_more_than_the_others(combo):
    src = _small("fruits.jpg", (128, 128))
    out = combo.dream(src, _params(10, term_weights=(0.0, 1.0, 0.0), guide_weight=0.0))
    rise = combo.features(out)["block4c"].mean(axis=(0, 1)) - combo.features(src)["block4c"].mean(axis=(0, 1))
    others = np.delete(rise, CHANNEL)
    msg = (
        f"channel {CHANNEL} rose {rise[CHANNEL]:.2f}; the others {others.mean():.2f} on average, |rise| "
        f"{np.abs(others).mean():.2f}, at most {others.max():.2f}"
    )
    print(msg)
    assert rise[CHANNEL] > 0 and rise[CHANNEL] >= 4 * np.abs(others).mean(), msg


@pytest.mark.slow
def test_class_logit_rises_into_the_top_5(combo):
    src = _small("fruits.jpg", (128, 128))
    out = combo.dream(src, _params(24, term_weights=(0.0, 0.0, 1.0), guide_weight=0.0))
    before, after = combo.features(src)["logits"], combo.features(out)["logits"]
    top5_before, top5 = ([int(i) for i in np.argsort(-x)[:5]] for x in (before, after))
    msg = f"logit {before[CLASS]:.2f} -> {after[CLASS]:.2f}; top 5 before {top5_before}, after {top5}"
    print(msg)
    assert CLASS not in top5_before, msg
    assert after[CLASS] > before[CLASS] + 2.0 and CLASS in top5, msg


@pytest.fixture(scope="module")
def full_inception(tmp_path_factory) -> dict[str, Path]:
    """A randomly initialised full InceptionV3 (with its classifier), saved as Keras 3 and legacy weights."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from dreamvideo.model import import_tensorflow

    import_tensorflow()
    keras.utils.set_random_seed(5)
    model = keras.applications.InceptionV3(include_top=True, weights=None)  # 299x299, softmax head
    folder = tmp_path_factory.mktemp("full")
    files = {"keras3": folder / "full.weights.h5", "legacy": folder / "full.h5"}
    model.save_weights(files["keras3"])
    with h5py.File(files["legacy"], "w") as f:  # the format of Keras' own download
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return files


@pytest.mark.slow
def test_inception_classes_with_its_full_weights(full_inception):
    """The mechanism with random full weights (real ones are not here, so "enters the top 5" is not
    checked): the chosen logit rises, and more when its class is dreamed than when another one is."""
    from dreamvideo.model import has_classifier

    assert has_classifier(full_inception["keras3"]) and has_classifier(full_inception["legacy"])
    assert not has_classifier(need(MEDIA.parent / "weights" / "inception_v3_notop_imagenet_to_mixed5.weights.h5"))
    src = _small("fruits.jpg", (160, 120))  # any frame size: the head pools globally
    rises = {}
    for target, weights in ((CLASS, "keras3"), (7, "legacy")):
        engine = get_engine(DreamConfig(model="inception_v3", weights=str(full_inception[weights]), dream_class=target))
        assert [(t.kind, t.layer) for t in engine.terms] == [("class", "predictions")]
        before = engine.features(src)["predictions"]
        after = engine.features(engine.dream(src, _params(10)))["predictions"]
        assert before.shape == (1000,) and before.min() < 0 and abs(before.sum() - 1) > 1e-3  # logits, not softmax
        rises[target] = after - before
    # A random network's logits share a common mode: the chosen class is judged against the others.
    lead = {c: float(r[c] - r.mean()) for c, r in rises.items()}  # the chosen logit's rise over the mean rise
    rank = {c: int((r > r[c]).sum()) for c, r in rises.items()}  # logits that rose more than the chosen one
    msg = (
        f"logit {CLASS} rose {rises[CLASS][CLASS]:.2e} dreamed ({rises[7][CLASS]:.2e} when class 7 was), "
        f"{lead[CLASS]:.2e} over the mean, rank {rank[CLASS]}; logit 7 rose {rises[7][7]:.2e} dreamed "
        f"({rises[CLASS][7]:.2e} when class {CLASS} was), {lead[7]:.2e} over the mean, rank {rank[7]}"
    )
    print(msg)
    # Random features are weakly class-selective (the rank stays in the hundreds); the target is not.
    assert rises[CLASS][CLASS] > rises[7][CLASS] + 1e-4 and rises[7][7] > rises[CLASS][7] + 1e-4, msg
    assert min(lead.values()) > 0, msg


# --- colours and masks, through the command line (one engine: the model's default layers) ----------


_DREAM = ["--model", MODEL, "--steps", "10", "--step-size", "0.05", "--octaves", "1"]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "photo.png"
    img = _small("butterfly.jpg", (128, 96))
    cv2.imwrite(str(path), cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


def test_keep_colors_keeps_chroma_and_dreams_luminance(tmp_path, photo):
    out = tmp_path / "k.png"
    result = runner.invoke(app, ["image", str(photo), "-o", str(out), "--keep-colors", *_DREAM])
    assert result.exit_code == 0, result.output
    a, b = to_ycc(_read(photo)), to_ycc(_read(out))
    dy, dcb, dcr = (float(np.abs(b[..., i] - a[..., i]).mean()) for i in range(3))
    msg = f"mean |change|: Y {dy:.2f}, Cb {dcb:.2f}, Cr {dcr:.2f} (0..255)"
    print(msg)
    assert dy >= 10 and dcb <= 1.5 and dcr <= 1.5, msg


def test_still_mask_black_untouched_white_dreamed(tmp_path, photo):
    import cv2

    mask = np.zeros((48, 64), np.uint8)  # half the frame's size: resized to it
    mask[:, 32:] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    out = tmp_path / "m.png"
    result = runner.invoke(
        app, ["image", str(photo), "-o", str(out), "--mask", str(tmp_path / "mask.png"), "--mask-feather", "4", *_DREAM]
    )
    assert result.exit_code == 0, result.output
    change = np.abs(_read(out) - _read(photo)).max(axis=2)
    black, white = change[:, :64], change[:, 64 + 6 :]  # white beyond the feather
    print(f"still mask: black max change {black.max()}, white mean change {white.mean():.2f}")
    assert black.max() <= 1, f"black region changed by up to {black.max()}"
    assert white.mean() >= 10, f"white region changed by {white.mean():.2f} on average"


def _lossless_clip(path: Path, frames: list[np.ndarray], fps: str = "10") -> Path:
    import cv2

    folder = path.with_suffix(".frames")
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(
            str(folder / f"{i:04d}.png"),
            cv2.cvtColor(f.astype(np.uint8), cv2.COLOR_RGB2BGR) if f.ndim == 3 else f.astype(np.uint8),
        )
    ffmpeg(
        "-framerate",
        fps,
        "-i",
        str(folder / "%04d.png"),
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-pix_fmt",
        "yuv444p",
        str(path),
    )
    return path


def _moving_square(n: int, size=(128, 96), side=40, step=12) -> list[np.ndarray]:
    out = []
    for k in range(n):
        m = np.zeros(size[::-1], np.uint8)
        m[28 : 28 + side, 8 + k * step : 8 + k * step + side] = 255
        out.append(m)
    return out


def test_mask_video_moves_with_its_clip(tmp_path):
    """Coherent video (the default chain): the dream follows a square moving over a still picture.

    Pixels the square newly uncovers carried no dream from the previous frame though the flow trusts
    them; the chain counts them as new content (before: square mean change 22.8, 17.1, 8.6, 1.0, 1.1).
    """
    from dreamvideo.decode import iter_frames

    src = _small("butterfly.jpg", (128, 96))
    clip = _lossless_clip(tmp_path / "clip.mp4", [src] * 5)
    masks = _moving_square(5)
    mask = _lossless_clip(tmp_path / "mask.mp4", masks)
    out = tmp_path / "frames/"
    result = runner.invoke(
        app, ["video", str(clip), "-o", str(out), "--mask", str(mask), "--mask-feather", "2", *_DREAM]
    )
    assert result.exit_code == 0, result.output
    raws = list(iter_frames(clip))
    dreamed = [_read(p) for p in sorted(Path(out).glob("*.png"))]
    assert len(dreamed) == 5
    for k, (raw, frame, m) in enumerate(zip(raws, dreamed, masks)):
        change = np.abs(frame - raw.astype(np.float32)).max(axis=2)
        inside = np.zeros_like(m, bool)
        inside[28 + 4 : 28 + 36, 8 + k * 12 + 4 : 8 + k * 12 + 36] = True  # the square, beyond the feather
        centre = float((change.sum(axis=0) * np.arange(change.shape[1])).sum() / change.sum())
        square = 8 + k * 12 + 19.5  # the square's centre column
        msg = (
            f"mask video frame {k}: black max {change[m == 0].max()}, square mean {change[inside].mean():.2f}, "
            f"change centred at x {centre:.1f} (square {square})"
        )
        print(msg)
        assert change[m == 0].max() <= 1, msg
        assert change[inside].mean() >= 10, msg
        assert abs(centre - square) <= 4, msg  # moves 12 px a frame; new pixels lag a little


def test_mask_video_resumes_bit_for_bit(tmp_path):
    """A coherent masked render interrupted after 3 of 6 frames resumes to the uninterrupted frames:
    the chain recomputes the previous frame's mask weight from the mask video (tiny model)."""
    from dreamvideo.cli import _parse_set, _settings
    from dreamvideo.render import render_video

    src = _small("butterfly.jpg", (128, 96))
    clip = _lossless_clip(tmp_path / "clip.mp4", [np.roll(src, 3 * k, axis=1) for k in range(6)])
    mask = _lossless_clip(tmp_path / "mask.mp4", _moving_square(6))
    flat = {"model": "tiny", "steps": 2, "warm_steps": 2, "octaves": 1, "step_size": 0.05, "mask": str(mask)}
    settings = _settings(None, _parse_set([f"{k}={v}" for k, v in flat.items()]))
    whole, resumed = tmp_path / "whole/", tmp_path / "resumed/"
    render_video(clip, whole, settings)

    def stop_at_3(done: int, _total) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(clip, resumed, settings, on_progress=stop_at_3)
    notes: list[str] = []
    render_video(clip, resumed, settings, on_note=notes.append)
    assert any("resuming: 3 finished frames kept" in n for n in notes), notes
    a, b = (sorted(Path(d).glob("*.png")) for d in (whole, resumed))
    assert len(a) == len(b) == 6
    for k, (x, y) in enumerate(zip(a, b)):
        assert np.array_equal(_read(x), _read(y)), f"frame {k} differs after the resume"


# --- bad input: one line, before any frame renders -----------------------------------------------


def test_bad_inputs_are_one_line_before_any_frame(tmp_path, photo):
    out = tmp_path / "o.png"
    line = _one_line_error(
        runner.invoke(app, ["image", str(photo), "-o", str(out), "--model", MODEL, "--layers", "block4c:80"])
    )
    assert "channel 80 of block4c" in line and "0..79" in line, line
    line = _one_line_error(
        runner.invoke(app, ["image", str(photo), "-o", str(out), "--model", MODEL, "--dream-class", "monach"])
    )
    assert "'monarch'" in line, line
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    line = _one_line_error(
        runner.invoke(app, ["image", str(photo), "-o", str(out), "--model", MODEL, "--guide", str(notes)])
    )
    assert line.startswith("error: guide ") and "not an image" in line, line
    line = _one_line_error(
        runner.invoke(
            app,
            [
                "image",
                str(photo),
                "-o",
                str(out),
                "--model",
                "inception_v3",
                "--weights",
                str(need(MEDIA.parent / "weights" / "inception_v3_notop_imagenet_to_mixed5.weights.h5")),
                "--dream-class",
                "monarch",
            ],
        )
    )
    assert "full weights" in line and "--weights FILE" in line and "efficientnet_lite0" in line, line
    assert not out.exists()
    src = _small("butterfly.jpg", (128, 96))
    clip = _lossless_clip(tmp_path / "clip.mp4", [src] * 5)
    mask = _lossless_clip(tmp_path / "mask.mp4", _moving_square(8))
    video_out = tmp_path / "v.mp4"
    line = _one_line_error(runner.invoke(app, ["video", str(clip), "-o", str(video_out), "--mask", str(mask), *_DREAM]))
    assert "8 frames" in line and "5" in line, line
    assert not video_out.exists() and not list(tmp_path.glob("*.dreamvideo-work"))


# --- the gallery ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_layers_sheet_has_one_labelled_tile_per_layer(tmp_path, photo):
    from dreamvideo.efficientnet import DREAM_LAYERS
    from dreamvideo.gallery import LABEL_HEIGHT, grid_shape

    out = tmp_path / "sheet.png"
    result = runner.invoke(
        app,
        ["layers", str(photo), "-o", str(out), "--model", MODEL, "--max-side", "96", "--steps", "3", "--octaves", "1"],
    )
    assert result.exit_code == 0, result.output
    sheet = _read(out)
    cols, rows = grid_shape(len(DREAM_LAYERS))
    tw, th = 96, 72  # 128x96 at --max-side 96
    assert sheet.shape == (rows * (th + LABEL_HEIGHT), cols * tw, 3)
    tiles, strips = [], []
    for i in range(len(DREAM_LAYERS)):
        r, c = divmod(i, cols)
        y, x = r * (th + LABEL_HEIGHT), c * tw
        tiles.append(sheet[y : y + th, x : x + tw])
        strips.append(sheet[y + th : y + th + LABEL_HEIGHT, x : x + tw])
    assert all(s.max() > 200 for s in strips), "every tile has a caption"  # white text on black
    assert len({s.tobytes() for s in strips}) == len(strips), "captions differ"
    diffs = [float(np.abs(a - b).mean()) for a, b in zip(tiles, tiles[1:])]
    print(f"sheet {sheet.shape}, neighbouring tiles differ by {min(diffs):.2f}..{max(diffs):.2f}")
    assert min(diffs) > 0.5, f"neighbouring tiles differ by {min(diffs):.2f} at least"
    assert f"{len(DREAM_LAYERS)} tiles" in result.output


def test_layer_specs_and_class_names_resolve_in_the_settings():
    from dreamvideo.config import Settings, merge
    from dreamvideo.objective import parse_layer_spec

    s = merge(Settings(), {"layers": "mixed4:97, mixed3=0.5", "dream_class": "Monarch Butterfly"}, source="test")
    assert s.dream.layers == ("mixed4:97", "mixed3=0.5") and s.dream.dream_class == 323
    assert [parse_layer_spec(e) for e in s.dream.layers] == [("mixed4", 97, 1.0), ("mixed3", None, 0.5)]
    assert merge(Settings(), {"dream_class": 5}, source="test").dream.dream_class == 5
