"""The README's usage examples run as written on a fresh offline machine (at a small size).

Every `dreamvideo ...` line of the bash blocks under "## Usage" and "## Music videos" runs in a folder
holding a copy of samples/, offline (DREAMVIDEO_OFFLINE=1, empty Keras cache), with flags appended
that only make it small (later flags win: --max-side 128, one step, one octave, a few frames); a batch
manifest gets the same settings in every job. Lines marked `# InceptionV3` must first fail in one line
that names `models install`, then work once the ../shared weights are installed with it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import INCEPTION_WEIGHTS
from typer.testing import CliRunner

from dreamvideo.cli import app
from dreamvideo.dream import clear_cache

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("## Usage", "## Music videos")
SMALL = ["--max-side", "128", "--steps", "1", "--octaves", "1"]
runner = CliRunner()


def usage_commands() -> list[str]:
    """The `dreamvideo` lines of the bash blocks in the README's usage sections."""
    text = (ROOT / "README.md").read_text()
    lines: list[str] = []
    for title in SECTIONS:
        body = text.split(title + "\n", 1)[1]
        body = re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]
        for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
            lines += [ln.strip() for ln in block.splitlines() if ln.strip().startswith("dreamvideo ")]
    return lines


def small(argv: list[str]) -> list[str]:
    """The same command at a test's size: flags appended (Typer keeps the last value of an option)."""
    command = argv[0]
    if command == "image":
        return argv + SMALL
    if command == "video":
        return argv + SMALL + ["--warm-steps", "1", "--max-frames", "3"]
    if command == "zoom":
        extra = ["--size", "128x72"] if "--size" in argv else []
        return argv + SMALL + ["--warm-steps", "1", "--seconds", "0.4", "--fps", "5"] + extra
    return argv


def _toml(data: dict[str, Any]) -> str:
    """A minimal TOML writer for manifests: scalars, lists of scalars, tables, arrays of tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def table(prefix: str, d: dict[str, Any], header: str) -> list[str]:
        out = [header] if header else []
        out += [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, (dict, list)) or
                (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
        for k, v in d.items():
            if isinstance(v, dict):
                out += table(f"{prefix}{k}.", v, f"[{prefix}{k}]")
        return out

    lines = table("", {k: v for k, v in data.items() if k != "job"}, "")
    for job in data.get("job", []):
        lines += table("job.", job, "[[job]]")
    return "\n".join(lines) + "\n"


def small_manifest(path: Path) -> None:
    """Rewrite a manifest copy so every job is tiny (each setting given once, flat)."""
    data = tomllib.loads(path.read_text())
    for job in data.get("job", []):
        overrides = {"max_side": 128, "steps": 1, "octaves": 1, "warm_steps": 1}
        overrides |= {"max_frames": 3} if job.get("kind") == "video" else {}
        overrides |= {"seconds": 0.4, "fps": 5} if job.get("kind") == "zoom" else {}
        for key in overrides:
            job.pop(key, None)
            for section in ("dream", "video", "zoom", "encode"):
                if isinstance(job.get(section), dict):
                    job[section].pop(key, None)
        job.update(overrides)
    path.write_text(_toml(data))


@pytest.mark.slow
def test_every_usage_command_runs_as_written(tmp_path, monkeypatch):
    commands = usage_commands()
    assert len(commands) >= 20 and any("samples/beat.mp4" in c for c in commands)
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    small_manifest(tmp_path / "samples" / "night.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DREAMVIDEO_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("DREAMVIDEO_WEIGHTS", raising=False)
    clear_cache()
    needs_inception = [c for c in commands if c.endswith("# InceptionV3")]
    assert needs_inception, "the README marks the lines that need InceptionV3"

    def run(line: str):
        argv = small(shlex.split(line, comments=True)[1:])
        result = runner.invoke(app, argv)
        for flag in ("-o", "--output"):
            if flag in argv and result.exit_code == 0:
                assert Path(argv[argv.index(flag) + 1]).exists(), line
        return result

    for line in commands:
        if line not in needs_inception:
            result = run(line)
            assert result.exit_code == 0, f"{line}\n{result.output}"
    for line in needs_inception:  # a fresh offline machine: one line naming the fix
        result = run(line)
        assert result.exit_code == 1, f"{line}\n{result.output}"
        assert len(result.output.strip().splitlines()) == 1 and "models install inception_v3" in result.output
    if not INCEPTION_WEIGHTS.exists():
        pytest.skip(f"{INCEPTION_WEIGHTS} is absent: the InceptionV3 lines were checked to fail as documented only")
    assert runner.invoke(app, ["models", "install", "inception_v3", str(INCEPTION_WEIGHTS)]).exit_code == 0
    clear_cache()
    for line in needs_inception:
        result = run(line)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        assert "inception_v3" in result.stdout, line
    clear_cache()
