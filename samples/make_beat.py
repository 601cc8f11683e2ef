"""Recipe for samples/beat.mp4: the pedestrians clip with a kick and hi-hat track at a known tempo.

The sound is synthesised with numpy (seeded, so the same every run) and muxed onto
samples/pedestrians.mp4's video (copied, not re-encoded) with the ffmpeg that imageio-ffmpeg
bundles. It gives `--react`, `--preset music-video` and `dreamvideo analyze` a real rhythm:

    100 BPM, kicks on the beats, hi-hats on the off-beats, from 0.35 s: a beat lasts 0.6 s, six
    frames of the 10 fps clip, so every hit lands in the middle of frame 3, 6, 9, ... 27

Run from the repository root:  python samples/make_beat.py  (writes samples/beat.mp4)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VIDEO = HERE / "pedestrians.mp4"  # 384x288, 10 fps, 3.0 s
OUTPUT = HERE / "beat.mp4"
SAMPLE_RATE = 44100  # Hz
SECONDS = 3.0  # the clip's length
BPM = 100  # a beat every 0.6 s
FIRST = 0.35  # seconds: the first kick; mid-frame, so AAC pre-echo cannot move a hit to the frame before
KICKS = tuple(round(FIRST + i * 60 / BPM, 6) for i in range(5))  # 0.35 0.95 1.55 2.15 2.75 s
HATS = tuple(round(t + 30 / BPM, 6) for t in KICKS[:-1])  # off-beats: 0.65 1.25 1.85 2.45 s
EVENTS = tuple(sorted(KICKS + HATS))  # every hit, in seconds


def kick(sr: int = SAMPLE_RATE) -> np.ndarray:
    """A bass drum: a sine sweeping 150 -> 45 Hz with a 0.12 s decay, plus a 2 ms click. float32 -1..1."""
    t = np.arange(int(0.35 * sr)) / sr
    freq = 45 + 105 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    body = np.sin(phase) * np.exp(-t / 0.12)
    click = np.where(t < 0.002, 1.0 - t / 0.002, 0.0)
    return (0.9 * body + 0.3 * click).astype(np.float32)


def hat(sr: int = SAMPLE_RATE, seed: int = 7) -> np.ndarray:
    """A closed hi-hat: seeded white noise, high-passed (first difference), 25 ms decay. float32."""
    t = np.arange(int(0.12 * sr)) / sr
    noise = np.random.default_rng(seed).standard_normal(len(t) + 1)
    return (0.25 * np.diff(noise) * np.exp(-t / 0.025)).astype(np.float32)


def track(sr: int = SAMPLE_RATE) -> np.ndarray:
    """The whole sound track, mono float32 -1..1, SECONDS long: silence except the hits."""
    out = np.zeros(int(SECONDS * sr), np.float32)
    for times, sound in ((KICKS, kick(sr)), (HATS, hat(sr))):
        for t in times:
            i = int(round(t * sr))
            n = min(len(sound), len(out) - i)
            out[i:i + n] += sound[:n]
    return np.clip(out, -1.0, 1.0)


def write_wav(path: Path, samples: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


def main(output: Path = OUTPUT) -> Path:
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "beat.wav"
        write_wav(wav, track())
        partial = output.with_name(f".{output.stem}.partial{output.suffix}")
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                        "-i", str(VIDEO), "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                        "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-t", str(SECONDS), "-map_metadata", "-1",
                        "-fflags", "+bitexact", "-flags:a", "+bitexact", "-movflags", "+faststart", str(partial)],
                       check=True)
        os.replace(partial, output)
    return output


if __name__ == "__main__":
    path = main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB): kicks at {KICKS} s, hi-hats at {HATS} s, {BPM} BPM")
