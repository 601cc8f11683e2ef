"""The console entry point (cli.run): after TensorFlow is loaded it ends the process without the
interpreter's slow teardown, and still gives the command's exit status, output and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    code = ("import sys; sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)]; import conftest; "
            "from dreamvideo.cli import run; sys.argv[0] = 'dreamvideo'; run()")
    return subprocess.run([sys.executable, "-c", code, str(REPO / "tests"), str(REPO), *args],
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_run_keeps_status_output_and_errors(tmp_path):
    import cv2

    src, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    ok = _run("image", str(src), "-o", str(out), "--model", "tiny", "--steps", "1", "--octaves", "1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert out.is_file() and "wrote" in ok.stdout  # stdout flushed before the prompt exit
    bad = _run("image", str(src), "-o", str(tmp_path / "bad.png"), "--model", "tiny", "--layers", "nope")
    assert bad.returncode == 1
    assert "unknown layer 'nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
