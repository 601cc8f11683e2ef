"""`python tests/cluster_driver.py ARGS...` = `dreamvideo ARGS...` with the tiny test model registered here
(and, through DREAMVIDEO_WORKER_SETUP, on every Ray worker): the cluster tests' driver process."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tiny_model
os.environ.setdefault("DREAMVIDEO_WORKER_SETUP", "tiny_model:register")

from tiny_model import register  # noqa: E402

register()

from dreamvideo.cli import app  # noqa: E402

app(prog_name="dreamvideo")
