"""The ascent's graph gets the fast kernels in every process (ModelSpec.graph_optimizer, dream.graph_optimizer).

After TensorFlow's graph optimiser, oneDNN gave InceptionV3's max-pool gradients their multi-threaded
kernel in some processes only; the rest ran Eigen's single-threaded MaxPoolGrad and dreamed ~1.14x
slower (bench/bench_graph.py). InceptionV3's ascent therefore runs without the optimiser.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dreamvideo.dream import graph_optimizer
from dreamvideo.model import get_spec

ROOT = Path(__file__).resolve().parents[1]


def _disabled() -> bool:
    import tensorflow as tf

    return bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False))


def test_the_optimiser_is_off_only_inside_the_ascent_of_a_model_that_asks_and_is_put_back():
    import tensorflow as tf

    inception, lite = get_spec("inception_v3"), get_spec("efficientnet_lite0")
    assert not inception.graph_optimizer and lite.graph_optimizer
    assert not _disabled()
    with graph_optimizer(inception, gpu=False):
        assert _disabled()
    assert not _disabled()
    with graph_optimizer(lite, gpu=False):
        assert not _disabled()
    with graph_optimizer(inception, gpu=True):  # oneDNN's kernels are the CPU's; a GPU keeps the optimiser
        assert not _disabled()
    with pytest.raises(RuntimeError), graph_optimizer(inception, gpu=False):
        raise RuntimeError("a failed ascent")
    assert not _disabled()
    # A process that turned it off itself keeps it off.
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        with graph_optimizer(inception, gpu=False):
            assert _disabled()
        assert _disabled()
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})


CHILD = r"""
import collections, glob, json, sys, tempfile
from pathlib import Path
import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2
from dreamvideo.config import DreamConfig
from dreamvideo.dream import DreamParams, get_engine
d = DreamConfig(model="inception_v3", weights=sys.argv[1])
engine = get_engine(d)
img = np.random.default_rng(0).uniform(0, 255, (120, 160, 3)).astype(np.float32)
p = DreamParams.from_config(d, steps=1, octaves=1)
engine.dream(img, p)  # the trace and the graph's optimisation
log = tempfile.mkdtemp()
tf.profiler.experimental.start(log)
engine.dream(img, p)
tf.profiler.experimental.stop()
xs = xplane_pb2.XSpace()
xs.ParseFromString(Path(glob.glob(log + "/**/*.xplane.pb", recursive=True)[0]).read_bytes())
kinds = collections.Counter()
for plane in xs.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
        for ev in line.events:
            kind = names[ev.metadata_id].rsplit(":", 1)[-1]
            if kind.endswith("MaxPoolGrad"):
                kinds[kind] += 1
            kinds["oneDNN ops"] += kind.startswith("_MklNative")
print(json.dumps(kinds))
"""


@pytest.mark.slow
def test_inception_max_pool_gradients_run_onednns_kernel_in_every_process(inception_weights):
    # Without the fix about two processes in three ran at least one Eigen MaxPoolGrad; three fresh
    # processes all on oneDNN's kernel would have happened by chance about once in 27.
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(inception_weights)],
            capture_output=True,
            text=True,
            cwd=str(ROOT),
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        kinds = json.loads(out.stdout.strip().splitlines()[-1])
        if not kinds.get("oneDNN ops"):
            pytest.skip("TensorFlow runs without oneDNN here (TF_ENABLE_ONEDNN_OPTS=0, or not an x86 build)")
        assert kinds.get("_MklNativeMaxPoolGrad", 0) >= 3, kinds  # InceptionV3's three max pools, each step
        assert kinds.get("MaxPoolGrad", 0) == 0, kinds
