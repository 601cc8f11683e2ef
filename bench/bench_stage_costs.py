"""Start-up cost of a render: what every `dreamvideo` command pays before its first frame.

Each stage runs in a fresh process (an import is cached once done), so the figures are what a new
command line pays: Python + the CLI, TensorFlow, each model's build and weights, the first traced
dream step at a small size. Prints one table with the load average at the start (the machine is
shared: compare stages within one run, never across runs). ``batch --dry-run`` uses these figures.

    python bench/bench_stage_costs.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import inception_weights  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import dreamvideo.cli  # noqa: F401
t_cli = time.perf_counter() - t0
from dreamvideo import model
t = time.perf_counter(); model.import_tensorflow(); t_tf = time.perf_counter() - t
out = {"cli": t_cli, "tensorflow": t_tf}
name, weights = sys.argv[1], (sys.argv[2] or None)
if name:
    from dreamvideo.config import DreamConfig
    from dreamvideo.dream import get_engine
    import numpy as np
    t = time.perf_counter()
    engine = get_engine(DreamConfig(model=name, weights=weights))
    out["load"] = time.perf_counter() - t
    img = np.random.default_rng(0).integers(0, 255, (128, 160, 3), dtype=np.uint8)
    from dreamvideo.dream import DreamParams
    params = DreamParams.from_config(DreamConfig(model=name, weights=weights, steps=1, octaves=1))
    for key in ("first_step", "second_step"):  # the first traces the step; the second reuses it
        t = time.perf_counter()
        engine.dream(img.astype("float32"), params, seed=0)
        out[key] = time.perf_counter() - t
print(json.dumps(out))
"""


def run(name: str, weights: str | None, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", CHILD, name, weights or ""], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    env = {**os.environ, "KERAS_HOME": tempfile.mkdtemp(prefix="bench-keras-"), "DREAMVIDEO_OFFLINE": "1"}
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    run("efficientnet_lite0", None, env)  # converts the bundled weights once into the cache, not timed
    rows = [("(none)", run("", None, env)), ("efficientnet_lite0", run("efficientnet_lite0", None, env))]
    weights = inception_weights()
    if weights is not None:
        rows.append(("inception_v3", run("inception_v3", str(weights), env)))
    print(f"{'model':<20} {'python+cli':>10} {'tensorflow':>10} {'model load':>10} {'1st step':>9} {'2nd step':>9}")
    for name, r in rows:
        cells = [f"{r[k]:.2f}" if k in r else "-" for k in ("cli", "tensorflow", "load", "first_step", "second_step")]
        print(f"{name:<20} " + " ".join(f"{c:>10}" for c in cells[:3]) + " " + " ".join(f"{c:>9}" for c in cells[3:]))


if __name__ == "__main__":
    main()
