"""Start-up: seconds of ``dreamvideo image`` on a 256 px image, this checkout against a baseline one.

Run:  python bench/bench_startup.py [--baseline DIR] [--repeats 3] [--models efficientnet_lite0,inception_v3]
      [--this-path DIR] [--base-path DIR]   (packages each side's pins would install, first on its PYTHONPATH)

The baseline is another checkout of the package (default: ``git archive`` of the merge base with
main, unpacked into a temporary folder), run by the same Python in the same run, alternating
with this checkout (A B B A ...), each in a fresh process:
  startup    wall seconds of the whole command with steps=1 (one step per octave: nothing but
             start-up, a few tiny steps, the image written and the process gone)
  default    the same at the default preset (4 octaves x 24 steps): what a user waits for
  cpu        the children's user+sys CPU seconds of the startup run (less moved by others' load)
and, for this checkout and the baseline once each, where the seconds go inside one process
(``--phases``): TensorFlow import, model build + weights, engine + trace and first call, a
second call, and the exit after the last Python line (measured from outside).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, Row, inception_weights, median, print_table, shared_dir

PHASES = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
marks = {"python": time.time() - t0}
from dreamvideo.model import import_tensorflow, load_model
import_tensorflow()
marks["import"] = time.time() - t0
from dreamvideo.dream import DreamEngine, DreamParams
import numpy as np
name, weights = sys.argv[1], (sys.argv[2] or None)
loaded = load_model(name, weights)
marks["model"] = time.time() - t0
engine = DreamEngine(loaded, loaded.spec.default_layers)
img = np.random.default_rng(0).uniform(0, 255, (184, 256, 3)).astype(np.float32)
p = DreamParams(steps=1, step_size=0.03, octaves=4, octave_scale=1.4, jitter=16, tile_size=512)
engine.dream(img, p)
marks["trace"] = time.time() - t0
engine.dream(img, p)
marks["second"] = time.time() - t0
print(json.dumps(marks), flush=True)
"""


def baseline_checkout() -> Path:
    """``git archive`` of the merge base with main (the code before this branch), in a temp folder."""
    base = subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = Path(tempfile.mkdtemp(prefix="dreamvideo-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", base], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


EXTRA_PATHS: dict[Path, str] = {}  # checkout -> folders put before it on PYTHONPATH (--this-path, --base-path)


def _env(code: Path) -> dict[str, str]:
    path = os.pathsep.join([*filter(None, [EXTRA_PATHS.get(code, "")]), str(code)])
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.setdefault("DREAMVIDEO_CACHE", str(Path(tempfile.gettempdir()) / "dreamvideo-bench-cache"))
    return env


def image_command(
    code: Path, image: Path, out: Path, model: str, weights: str | None, steps: int | None
) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m dreamvideo.cli image`` run from ``code``."""
    args = [sys.executable, "-m", "dreamvideo.cli", "image", str(image), "-o", str(out), "--set", f"model={model}"]
    if weights:
        args += ["--weights", weights]
    if steps is not None:
        args += ["--set", f"steps={steps}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=str(code), env=_env(code), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{code}: image command failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    out.unlink()
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def phases(code: Path, model: str, weights: str | None) -> dict[str, float]:
    env = _env(code)
    env["BENCH_T0"] = repr(time.time())
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PHASES, model, weights or ""],
        cwd=str(code),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    total = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-400:])
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    marks["exit"] = total
    return marks


def test_image(folder: Path) -> Path:
    import cv2

    src = shared_dir() / "media" / "butterfly.jpg"
    rgb = cv2.imread(str(src))
    if rgb is None:
        raise SystemExit(f"{src} is absent: the start-up bench needs shared/media/butterfly.jpg")
    path = folder / "in256.png"
    cv2.imwrite(
        str(path), cv2.resize(rgb, (256, round(rgb.shape[0] * 256 / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    )
    return path


def run(
    baseline: Path, models: list[str], repeats: int = 3, with_default: bool = True, with_phases: bool = True, log=print
) -> tuple[list[Row], dict]:
    tmp = Path(tempfile.mkdtemp(prefix="dreamvideo-startup-"))
    image = test_image(tmp)
    codes = {"baseline": baseline, "this": ROOT}
    rows: list[Row] = []
    res: dict = {}
    for model in models:
        weights = None
        if model == "inception_v3":
            w = inception_weights()
            if w is None:
                log("inception_v3: weights absent, skipped")
                continue
            weights = str(w)
        r: dict = {k: {"startup": [], "cpu": [], "default": []} for k in codes}
        image_command(ROOT, image, tmp / "warm.png", model, weights, 1)  # fill the disk cache and the conversion
        for i in range(repeats):
            order = list(codes) if i % 2 == 0 else list(codes)[::-1]
            for k in order:
                wall, cpu = image_command(codes[k], image, tmp / f"{k}.png", model, weights, 1)
                r[k]["startup"].append(wall)
                r[k]["cpu"].append(cpu)
                log(f"  {model} {k}: startup {wall:.2f} s (cpu {cpu:.2f} s)")
            if with_default and i == 0:
                for k in order:
                    wall, _ = image_command(codes[k], image, tmp / f"{k}.png", model, weights, None)
                    r[k]["default"].append(wall)
                    log(f"  {model} {k}: default preset {wall:.2f} s")
        if with_phases:
            for k, code in codes.items():
                r[k]["phases"] = phases(code, model, weights)
                log(f"  {model} {k}: phases {r[k]['phases']}")
        res[model] = r
        b, t = median(r["baseline"]["startup"]), median(r["this"]["startup"])
        bc, tc = median(r["baseline"]["cpu"]), median(r["this"]["cpu"])
        rows.append(
            Row(
                f"{model} start-up s (steps=1)",
                f"{b:.2f} -> {t:.2f}",
                f"cut {100 * (1 - t / b):.0f}% (wall, median of {repeats}); CPU {bc:.2f} -> {tc:.2f} s, "
                f"cut {100 * (1 - tc / bc):.0f}%",
            )
        )
        if with_default:
            bd, td = r["baseline"]["default"][0], r["this"]["default"][0]
            rows.append(
                Row(
                    f"{model} default preset s",
                    f"{bd:.2f} -> {td:.2f}",
                    f"cut {100 * (1 - td / bd):.0f}% (one run each)",
                )
            )
        if with_phases:

            def split(m: dict) -> str:
                keys = ["python", "import", "model", "trace", "second", "exit"]
                vals = [m[keys[0]]] + [m[b] - m[a] for a, b in itertools.pairwise(keys)]
                return " / ".join(f"{v:.2f}" for v in vals)

            for k in codes:
                rows.append(
                    Row(
                        f"{model} phases, {k}",
                        split(r[k]["phases"]),
                        "python / TF import / model+weights / engine+trace+1st call / 2nd call / exit, s",
                    )
                )
    return rows, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=None, help="a checkout of the package to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="efficientnet_lite0,inception_v3")
    ap.add_argument("--no-default", action="store_true", help="skip the default-preset runs")
    ap.add_argument("--no-phases", action="store_true")
    ap.add_argument(
        "--this-path",
        default="",
        help="a folder put first on PYTHONPATH for this checkout only: packages as its pins would install them "
        "(e.g. pip install --no-deps --target DIR 'ml-dtypes==0.6.0')",
    )
    ap.add_argument("--base-path", default="", help="the same for the baseline")
    a = ap.parse_args(argv)
    baseline = a.baseline or baseline_checkout()
    EXTRA_PATHS.update({ROOT: a.this_path, baseline: a.base_path})

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    log(f"baseline: {baseline}")
    rows, _ = run(baseline, a.models.split(","), a.repeats, not a.no_default, not a.no_phases, log=log)
    print_table(rows, "start-up of `dreamvideo image` on a 256 px image: baseline -> this checkout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
