"""Shared helpers of the benchmarks: paths, the model, test clips, timing, machine facts, peak RSS.

Every benchmark measures its baseline in the same run as what it compares, and prints ratios:
the machine is shared, so absolute seconds move with other people's load; ratios move less.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shared_dir() -> Path:
    env = os.environ.get("DREAMVIDEO_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def inception_weights() -> Path | None:
    p = shared_dir() / "weights" / "inception_v3_notop_imagenet_to_mixed5.weights.h5"
    return p if p.is_file() else None


def vtest_path() -> Path:
    p = shared_dir() / "media" / "vtest.avi"
    if not p.is_file():
        raise SystemExit(f"{p} is absent: the video benchmarks need shared/media/vtest.avi")
    return p


def model_settings(log: Callable[[str], None] = print) -> dict[str, Any]:
    """Flat settings choosing the product's default model: InceptionV3 with the shared weights, or
    EfficientNet-Lite0 (bundled) with a message when they are absent."""
    w = inception_weights()
    if w is None:
        log("InceptionV3 weights absent from shared/weights: falling back to efficientnet_lite0 (bundled)")
        return {"model": "efficientnet_lite0"}
    return {"model": "inception_v3", "weights": str(w)}


def default_settings(**flat: Any):
    """The default preset with the benchmark's model, plus ``flat`` overrides."""
    from dreamvideo.presets import load_preset

    s = load_preset("default")
    return s.replace(**{**model_settings(lambda m: None), **flat})


# --- media ---------------------------------------------------------------------------------------


def make_clip(width: int, height: int, frames: int, start_frame: int = 100, out_dir: Path | None = None) -> Path:
    """A short cut of vtest.avi (768x576, pedestrians) as a temporary H.264 mp4 of exactly
    ``width``x``height``: centre-cropped to 16:9 (768x432), then scaled with ffmpeg. Cached by name."""
    import imageio_ffmpeg

    out_dir = out_dir or Path(tempfile.gettempdir()) / "dreamvideo-bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"vtest_{width}x{height}_{start_frame}_{frames}.mp4"
    if out.is_file() and out.stat().st_size > 0:
        return out
    tmp = out.with_suffix(".partial.mp4")
    vf = f"select=gte(n\\,{start_frame}),crop=768:432:0:72,scale={width}:{height}:flags=bicubic,setpts=N/10/TB"
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(vtest_path()),
        "-vf",
        vf,
        "-frames:v",
        str(frames),
        "-r",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "16",
        "-pix_fmt",
        "yuv420p",
        str(tmp),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    os.replace(tmp, out)
    return out


def read_clip(path: Path, max_side: int | None = None, n: int | None = None) -> list[np.ndarray]:
    from dreamvideo.decode import iter_frames

    return list(iter_frames(path, max_side=max_side, max_frames=n))


def vtest_frame(width: int, height: int, index: int = 100) -> np.ndarray:
    """One vtest.avi frame, cropped to 16:9 and resized to width x height (uint8 RGB)."""
    import cv2

    cap = cv2.VideoCapture(str(vtest_path()))
    frame = None
    for _ in range(index + 1):
        ok, f = cap.read()
        if not ok:
            break
        frame = f
    cap.release()
    if frame is None:
        raise SystemExit("cannot decode vtest.avi")
    crop = frame[72 : 72 + 432, :768]
    interp = cv2.INTER_AREA if width < 768 else cv2.INTER_CUBIC
    return cv2.cvtColor(cv2.resize(crop, (width, height), interpolation=interp), cv2.COLOR_BGR2RGB)


def strength(out: np.ndarray, raw: np.ndarray) -> float:
    """Dream strength: mean |out - in| on the 0..255 scale."""
    return float(np.abs(out.astype(np.float32) - raw.astype(np.float32)).mean())


# --- timing --------------------------------------------------------------------------------------


class Timer:
    """Accumulates named wall-clock spans: ``with t("dream"): ...``."""

    def __init__(self) -> None:
        self.spans: dict[str, list[float]] = {}

    def __call__(self, name: str) -> _Span:
        return _Span(self, name)

    def total(self, name: str) -> float:
        return float(sum(self.spans.get(name, [])))


class _Span:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.timer.spans.setdefault(self.name, []).append(time.perf_counter() - self.t0)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


# --- the engine's tiling, mirrored for FLOP counting ----------------------------------------------


def edge_pad(h: int, w: int, jitter: int, spec: Any = None) -> int:
    """The reflect padding the engine adds on each side before tiling: dream.edge_pad's for ``spec``
    (a ModelSpec), max(jitter, 16) without one (every model's rule before the per-model pads)."""
    from dreamvideo import dream

    if spec is not None:
        return dream.edge_pad(spec, h, w, int(jitter), 1.0)[0]
    return max(0, min(max(int(jitter), 16), min(h, w) - 1))


def engine_tiles(h: int, w: int, tile: int, min_side: int, jitter: int, spec: Any = None) -> list[tuple[int, int]]:
    """(h, w) of each tile of one step of the engine on an HxW octave: padded (``spec``'s rule and grid,
    dream.edge_pad and dream.fit_grid), then tiled."""
    from dreamvideo import dream

    tile = max(int(tile), min_side)
    pad = edge_pad(h, w, jitter, spec)
    if spec is None:
        return tiles(h + 2 * pad, w + 2 * pad, tile, min_side)
    (top, bottom, left, right), (th, tw) = dream.fit_grid(spec, h, w, pad, tile)
    return tiles(h + top + bottom, w + left + right, (th, tw), min_side)


def tiles(h: int, w: int, tile: int | tuple[int, int], min_side: int) -> list[tuple[int, int]]:
    """(h, w) of each tile the engine's tiled_gradient uses on an HxW image (dream.py's arithmetic);
    ``tile`` the largest tile side, or (height, width) as dream.fit_grid gives them."""
    ty, tx = (max(tile, min_side),) * 2 if isinstance(tile, int) else tile  # as dream.py hands them to the graph
    ny, nx = -(-h // ty), -(-w // tx)
    th, tw = -(-h // ny), -(-w // nx)
    out = []
    for iy in range(ny):
        for ix in range(nx):
            y0, x0 = iy * th, ix * tw
            y0 = min(y0, max(h - max(th, min_side), 0))
            x0 = min(x0, max(w - max(tw, min_side), 0))
            y1 = min(y0 + max(th, min_side), h)
            x1 = min(x0 + max(tw, min_side), w)
            out.append((y1 - y0, x1 - x0))
    return out


# --- machine facts -------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """Cores, CPU model, date and versions, for RESULTS.md."""
    cpu, family, model, flags = "?", "?", "?", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "model name" and cpu == "?":
                cpu = val
            elif key == "cpu family" and family == "?":
                family = val
            elif key == "model" and model == "?":
                model = val
            elif key == "flags" and not flags:
                have = set(val.split())
                flags = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in have)
    except OSError:
        pass
    cpu = f"{cpu} (family {family}, model {model})"
    info = {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "cpu_flags": flags,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("tensorflow", "keras", "cv2"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = "missing"
    try:
        info["load_avg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory"] = f"{int(mem) / 2**20:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return info


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_python(code_args: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run ``python <args>`` in a fresh process (thread/oneDNN settings and peak RSS are per process);
    returns its stdout; raises with its stderr's tail on failure."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, *code_args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=str(ROOT)
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"subprocess {code_args} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


@dataclass
class Row:
    """One line of a results table."""

    what: str
    value: str
    note: str = ""


def print_table(rows: list[Row], title: str = "") -> str:
    w1 = max([len(r.what) for r in rows] + [4])
    w2 = max([len(r.value) for r in rows] + [5])
    lines = []
    if title:
        lines.append(title)
    lines.append(f"| {'what'.ljust(w1)} | {'value'.ljust(w2)} | note |")
    lines.append(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|------|")
    for r in rows:
        lines.append(f"| {r.what.ljust(w1)} | {r.value.ljust(w2)} | {r.note} |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text
