"""`dreamvideo doctor`: what this machine has and lacks, each line OK or what to do.

Fast by default: TensorFlow is imported (seconds: it is every render's start-up cost) only when
there is a GPU to check or ``deep`` is asked for; everything else reads files and metadata.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str  # what was checked
    ok: bool  # passed
    detail: str  # the finding, or the fix
    required: bool = True  # a failure here makes `doctor` exit non-zero


@dataclass(frozen=True)
class GpuCard:
    """A GPU the driver reports, before TensorFlow is involved."""

    name: str  # e.g. "NVIDIA H200"
    memory_mib: int | None  # total memory in MiB; None when unknown


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def cache_dir() -> Path:
    """dreamvideo's own cache (converted weights): $DREAMVIDEO_CACHE, else ~/.cache/dreamvideo."""
    from .efficientnet import default_cache_dir

    return default_cache_dir()


def gpu_cards() -> list[GpuCard]:
    """NVIDIA GPUs from nvidia-smi (name, memory), else from /proc/driver/nvidia; [] when there is none."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=20)
            cards = []
            for line in out.stdout.splitlines():
                name, _, mem = line.rpartition(",")
                if name.strip():
                    cards.append(GpuCard(name.strip(), int(mem) if mem.strip().isdigit() else None))
            if cards:
                return cards
        except (OSError, subprocess.SubprocessError):
            pass
    cards = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            lines = [ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("Model")]
            model = lines[0] if lines else "NVIDIA GPU"
        except OSError:
            model = "NVIDIA GPU"
        cards.append(GpuCard(model, None))
    return cards


def _tensorflow_version() -> str | None:
    """The installed TensorFlow distribution's version, without importing it."""
    from importlib import metadata

    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"):
        try:
            return f"{metadata.version(dist)} ({dist})"
        except metadata.PackageNotFoundError:
            continue
    return None


def _conv_on(tf, device: str) -> str | None:
    """Run a small convolution on ``device``; None when it ran there, else why not."""
    try:
        with tf.device(device):
            x = tf.random.stateless_uniform([1, 32, 32, 3], seed=[1, 2])
            k = tf.random.stateless_uniform([3, 3, 3, 8], seed=[3, 4])
            y = tf.nn.conv2d(x, k, 1, "SAME")
            float(tf.reduce_sum(y))
        placed = getattr(y, "device", "") or ""
        kind = device.strip("/").split(":")[0]
        return None if kind.upper() in placed.upper() else f"it ran on {placed or 'another device'}"
    except Exception as err:  # noqa: BLE001 - any failure is the finding
        return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def _tensorflow_checks(deep: bool, cards: list[GpuCard]) -> list[Check]:
    from .errors import DreamVideoError

    version = _tensorflow_version()
    if version is None:
        return [Check("tensorflow", False, "not installed: use `pip install tensorflow` (or `pip install "
                                           "'dreamvideo[gpu]'` on a machine with an NVIDIA GPU)")]
    if not cards and not deep:
        return [Check("tensorflow", True, f"{version} installed (not imported here: `dreamvideo doctor --deep` "
                                          "imports it and runs a convolution)"),
                Check("gpu", True, "none found (no NVIDIA driver): dreams run on the CPU", required=False)]
    import time

    from .model import import_tensorflow

    start = time.perf_counter()
    try:
        tf = import_tensorflow()
    except DreamVideoError as err:
        return [Check("tensorflow", False, str(err))]
    took = time.perf_counter() - start
    checks = [Check("tensorflow", True, f"{tf.__version__}; import took {took:.1f} s (each render's start-up)")]
    if deep:
        why = _conv_on(tf, "/CPU:0")
        checks.append(Check("cpu", why is None, "convolution OK" if why is None else f"convolution failed: {why}"))
    gpus = tf.config.list_physical_devices("GPU")
    if not cards and not gpus:
        checks.append(Check("gpu", True, "none found (no NVIDIA driver): dreams run on the CPU", required=False))
    if cards and not gpus:
        names = ", ".join(c.name for c in cards)
        checks.append(Check("gpu", False, f"the driver lists {names} but TensorFlow sees no GPU: use "
                                          "`pip install 'dreamvideo[gpu]'` (tensorflow[and-cuda])", required=False))
    for i, gpu in enumerate(gpus):
        card = cards[i] if i < len(cards) else None
        try:
            details = tf.config.experimental.get_device_details(gpu)
            name = details.get("device_name") or (card.name if card else gpu.name)
        except (RuntimeError, ValueError):
            name = card.name if card else gpu.name
        memory = f"{card.memory_mib / 1024:.0f} GiB" if card and card.memory_mib else "memory unknown"
        why = _conv_on(tf, f"/GPU:{i}")
        checks.append(Check(f"gpu {i}", why is None, f"{name}, {memory}: " + (
            "TensorFlow runs a convolution on it" if why is None else
            f"TensorFlow cannot run a convolution on it ({why}): check the driver and `pip install 'dreamvideo[gpu]'`"),
            required=False))
    return checks


def run_checks(deep: bool = False) -> list[Check]:
    """Every check, in the order a user would fix things.

    Args:
        deep: also import TensorFlow and run a convolution on the CPU when there is no GPU (a few
            seconds); with a GPU that always happens, on each GPU.

    Returns:
        The checks, each with its finding or fix.
    """
    checks: list[Check] = []
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
        checks.append(Check("ffmpeg", True, f"{first} ({exe})"))
    except Exception as err:  # noqa: BLE001 - any failure is the finding
        checks.append(Check("ffmpeg", False, f"not usable ({err}): use `pip install --force-reinstall imageio-ffmpeg`"))

    from .errors import DreamVideoError
    from .model import find_weights, get_spec, keras_cache_dir, model_names

    checks += _tensorflow_checks(deep, gpu_cards())

    for name in model_names():
        spec = get_spec(name)
        try:
            src = find_weights(spec)
            ok = src.kind in ("local", "installed", "cached", "bundled")
            checks.append(Check(f"model {name}", ok, src.detail, required=False))
        except DreamVideoError as err:
            checks.append(Check(f"model {name}", False, str(err), required=False))

    for label, folder in (("keras cache", keras_cache_dir()), ("dreamvideo cache", cache_dir())):
        ok = _writable(folder)
        checks.append(Check(label, ok, str(folder) if ok else f"{folder} is not writable: fix its permissions or set "
                            f"{'KERAS_HOME' if label == 'keras cache' else 'DREAMVIDEO_CACHE'} to a writable folder"))
    return checks
