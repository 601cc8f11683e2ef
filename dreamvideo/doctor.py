"""`dreamvideo doctor`: what this machine has and lacks, each line OK or what to do."""

from __future__ import annotations

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


def run_checks() -> list[Check]:
    """Every check, in the order a user would fix things."""
    checks: list[Check] = []
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
        checks.append(Check("ffmpeg", True, f"{first} ({exe})"))
    except Exception as err:  # noqa: BLE001 - any failure is the finding
        checks.append(Check("ffmpeg", False, f"not usable ({err}): use `pip install --force-reinstall imageio-ffmpeg`"))

    from .errors import DreamVideoError
    from .model import find_weights, get_spec, import_tensorflow, keras_cache_dir, model_names

    try:
        tf = import_tensorflow()
        gpus = tf.config.list_physical_devices("GPU")
        devices = ", ".join(d.name for d in gpus) if gpus else "CPU only (no GPU visible)"
        checks.append(Check("tensorflow", True, f"{tf.__version__}; devices: {devices}"))
    except DreamVideoError as err:
        checks.append(Check("tensorflow", False, str(err)))

    for name in model_names():
        spec = get_spec(name)
        try:
            src = find_weights(spec)
            ok = src.kind in ("local", "cached", "bundled")
            detail = src.detail if ok else f"{src.detail}; offline? {spec.install_hint}"
            checks.append(Check(f"model {name}", ok, detail, required=False))
        except DreamVideoError as err:
            checks.append(Check(f"model {name}", False, str(err), required=False))

    for label, folder in (("keras cache", keras_cache_dir()), ("dreamvideo cache", cache_dir())):
        ok = _writable(folder)
        checks.append(Check(label, ok, str(folder) if ok else f"{folder} is not writable: fix its permissions or set "
                            f"{'KERAS_HOME' if label == 'keras cache' else 'DREAMVIDEO_CACHE'} to a writable folder"))
    return checks
