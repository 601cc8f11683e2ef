"""Audio features for music videos, computed with numpy only and aligned to the video's frames.

Frame ``n`` of a render at ``fps`` covers the time ``[n/fps, (n+1)/fps)``; ``fps`` is an exact
:class:`~fractions.Fraction` (``24000/1001`` stays exact), and sample boundaries are computed with
integer arithmetic, so frame ``n`` always sees samples ``ceil(n*sr/fps) .. ceil((n+1)*sr/fps) - 1``.

Every feature is a float32 array with one value per frame, in 0..1:

``loudness``
    RMS of the frame's samples in dBFS, mapped linearly to 0..1 *relative to the analysed track*:
    its 99th-percentile level maps to 1 and its 5th-percentile level to 0. The span is kept between
    12 and 48 dB (a steady track does not turn 1 dB wobbles into full swings; a track with silent
    parts is not squashed), levels below -80 dBFS are 0, and the top is never taken below -60 dBFS
    (near-silence stays near 0).
    Then smoothed with an envelope follower: instant attack, 0.12 s release.
``onsets``
    A pulse envelope: 1.0 on each picked onset's frame, decaying as ``exp(-dt / 0.2 s)`` until the
    next onset re-triggers it, so a reactive setting "kicks" on the beat and relaxes.
    Onsets are picked from the spectral flux (STFT of ~46 ms windows every ~11.6 ms, log-compressed
    magnitudes, positive differences averaged over bins), normalised by max(its maximum, 0.1) so
    near-silence never yields onsets, with
    librosa-style peak picking: a local maximum over +-30 ms that rises ``0.1`` above the mean of
    the surrounding -100/+70 ms and is at least 1.3 times that mean (steady noise or a sustained
    chord gives none), at least 80 ms after the previous onset. Windows that reach past the start
    or end of the analysed audio (its first and last ~23 ms) never give onsets: a cut is not a beat.
    ``onset_frames`` are the frames the picked onsets fall in.
``low`` / ``mid`` / ``high``
    Energy below 250 Hz, 250-2000 Hz and above 2000 Hz (from the same STFT, Parseval-scaled so it
    is a mean-square like the RMS), in dB, each band mapped to 0..1 like ``loudness`` (relative to
    its own levels over the track) and smoothed the same way.

The mapping is relative to the analysed segment (``start``/``duration``), so a reaction's
``lo..hi`` range is used fully within the render. Frames after the end of the audio are silence.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .decode import read_audio  # ffmpeg decoding lives in decode.py
from .errors import ConfigError, InputError
from .files import write_atomic
from .timing import parse_fps

FEATURES: tuple[str, ...] = ("loudness", "onsets", "low", "mid", "high")
SAMPLE_RATE = 22050  # what analyze_file decodes to
BANDS_HZ = (250.0, 2000.0)  # low < 250 <= mid < 2000 <= high

ONSET_DECAY_S = 0.2  # time constant of the onset pulse
RELEASE_S = 0.12  # release time constant of the loudness/band envelope follower
_DELTA = 0.1  # peak-picking threshold above the local mean, on the max-normalised flux
_RATIO = 1.3  # ... and a peak must also be this many times the local mean (steady noise has no onsets)
_FLUX_FLOOR = 0.1  # the flux is normalised by max(its max, this): near-silence never yields onsets
_LOG_GAIN = 100.0  # log1p(gain * magnitude) compression for the flux
_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class AudioFeatures:
    """Per-frame audio features of one render (see the module docstring for how each is made)."""

    fps: Fraction
    loudness: np.ndarray  # (n_frames,) float32 0..1
    onsets: np.ndarray  # (n_frames,) float32 0..1 decaying pulse after each picked onset
    onset_frames: np.ndarray  # (n_onsets,) int64 frame indices of picked onsets, increasing
    low: np.ndarray  # (n_frames,) float32 0..1, energy < 250 Hz
    mid: np.ndarray  # (n_frames,) float32 0..1, energy 250-2000 Hz
    high: np.ndarray  # (n_frames,) float32 0..1, energy > 2000 Hz

    def __post_init__(self) -> None:
        n = len(self.loudness)
        for name in FEATURES:
            if getattr(self, name).shape != (n,):
                raise ValueError(f"audio feature {name} has shape {getattr(self, name).shape}, expected ({n},)")

    @property
    def n_frames(self) -> int:
        return int(len(self.loudness))

    @property
    def duration(self) -> float:
        """Seconds covered by the frames."""
        return float(Fraction(self.n_frames) / self.fps)

    def feature(self, name: str) -> np.ndarray:
        """The per-frame array of ``name``: one of loudness, onsets, low, mid, high."""
        if name not in FEATURES:
            raise ConfigError(f"unknown audio feature {name!r}: use one of {', '.join(FEATURES)}")
        return getattr(self, name)


# ----------------------------------------------------------------------------------------------
# framing helpers (exact)


def _frame_bounds(n_frames: int, sample_rate: int, fps: Fraction) -> np.ndarray:
    """Sample index where each frame starts, plus the end of the last: ceil(n * sr / fps)."""
    n = np.arange(n_frames + 1, dtype=np.int64)
    num, den = fps.numerator, fps.denominator
    return -((-n * (sample_rate * den)) // num)


def _sample_to_frame(sample: np.ndarray, sample_rate: int, fps: Fraction) -> np.ndarray:
    """Frame containing each sample index: floor(sample * fps / sr)."""
    return (np.asarray(sample, dtype=np.int64) * fps.numerator) // (sample_rate * fps.denominator)


def _frames_for(n_samples: int, sample_rate: int, fps: Fraction) -> int:
    """Frames needed to cover n_samples: ceil(n_samples / sr * fps)."""
    return int(-((-n_samples * fps.numerator) // (sample_rate * fps.denominator)))


def _to_mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim == 2:  # (n, channels) as decoders give it; (channels, n) if clearly so
        x = x.mean(axis=1) if x.shape[0] >= x.shape[1] else x.mean(axis=0)
    if x.ndim != 1:
        raise InputError(f"audio samples must be 1-D (mono) or 2-D (samples x channels), got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


# ----------------------------------------------------------------------------------------------
# STFT


def _stft_params(sample_rate: int) -> tuple[int, int]:
    """~46 ms windows (a power of two) and a hop of a quarter of that (~11.6 ms)."""
    n_fft = 2 ** max(6, int(round(math.log2(sample_rate * 0.0464))))
    return n_fft, n_fft // 4


def _stft_flux_bands(x: np.ndarray, sample_rate: int, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectral flux and low/mid/high band mean-squares of Hann windows centred on 0, hop, 2*hop, ...

    Computed in chunks, so memory stays at a few MB whatever the length. Returns ``flux`` (hops,):
    the mean over bins of the positive change of ``log1p(gain * |X|)`` since the previous window
    (0 for the first), and ``bands`` (hops, 3): Parseval-scaled mean-square energy per band.
    """
    n_hops = 1 + len(x) // hop
    pad = n_fft // 2
    total = (n_hops - 1) * hop + n_fft
    # reflect at both ends: the cut at the start/end of the analysed segment is not a sound
    tail = max(0, total - pad - len(x))
    mode = "reflect" if len(x) > max(pad, tail) else "constant"
    xp = np.pad(x, (pad, tail), mode=mode)[:total]
    window = (np.hanning(n_fft + 1)[:-1]).astype(np.float32)  # periodic Hann
    mag_scale = 2.0 / float(window.sum())  # a full-scale sinusoid peaks at ~1
    power_scale = 2.0 / (n_fft * float(np.sum(window.astype(np.float64) ** 2)))  # Parseval: -> mean square
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    cut_lo = int(np.searchsorted(freqs, BANDS_HZ[0]))  # first bin >= 250 Hz
    cut_hi = int(np.searchsorted(freqs, BANDS_HZ[1]))  # first bin >= 2000 Hz
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop][:n_hops]
    flux = np.zeros(n_hops, dtype=np.float64)
    bands = np.zeros((n_hops, 3), dtype=np.float64)
    prev = None
    chunk = 1024
    for i in range(0, n_hops, chunk):
        mag = np.abs(np.fft.rfft(frames[i : i + chunk] * window, axis=1)).astype(np.float32)
        logmag = np.log1p((_LOG_GAIN * mag_scale) * mag)
        if prev is not None:
            logmag_prev = np.concatenate([prev[None], logmag[:-1]])
            flux[i : i + len(mag)] = np.maximum(logmag - logmag_prev, 0.0).mean(axis=1)
        else:
            flux[i + 1 : i + len(mag)] = np.maximum(logmag[1:] - logmag[:-1], 0.0).mean(axis=1)
        prev = logmag[-1]
        power = np.square(mag, dtype=np.float64)
        bands[i : i + len(mag), 0] = power[:, 1:cut_lo].sum(axis=1) * power_scale  # DC excluded
        bands[i : i + len(mag), 1] = power[:, cut_lo:cut_hi].sum(axis=1) * power_scale
        bands[i : i + len(mag), 2] = power[:, cut_hi:].sum(axis=1) * power_scale
    return flux, bands


def _frame_mean_square(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean of x**2 over each frame's samples [start, end); samples past the end of x count as 0."""
    out = np.zeros(len(starts), dtype=np.float64)
    valid = np.flatnonzero(starts < len(x))
    block = 4096
    for k in range(0, len(valid), block):
        idx = valid[k : k + block]
        s0, s1 = int(starts[idx[0]]), int(min(ends[idx[-1]], len(x)))
        seg = np.square(x[s0:s1], dtype=np.float64)
        out[idx] = np.add.reduceat(seg, starts[idx] - s0)
    return out / np.maximum(ends - starts, 1)


# ----------------------------------------------------------------------------------------------
# normalisation and smoothing


def _db_to_unit(db: np.ndarray) -> np.ndarray:
    """dB levels -> 0..1 relative to the track: p99 -> 1, p5 -> 0 (span 12..48 dB, nothing below -80 dBFS)."""
    if db.size == 0:
        return db.astype(np.float32)
    top = max(float(np.percentile(db, 99)), -60.0)
    bottom = float(np.percentile(db, 5))
    bottom = min(max(bottom, top - 48.0, -80.0), top - 12.0)
    return np.clip((db - bottom) / (top - bottom), 0.0, 1.0)


def _follow(x: np.ndarray, fps: Fraction, release_s: float = RELEASE_S) -> np.ndarray:
    """Envelope follower: rises instantly, falls with time constant release_s."""
    if x.size == 0:
        return x.astype(np.float32)
    a = math.exp(-1.0 / (float(fps) * release_s))
    y = np.empty_like(x, dtype=np.float64)
    prev = 0.0
    for i, v in enumerate(x.tolist()):
        prev = v if v > prev else a * prev + (1.0 - a) * v
        y[i] = prev
    return y.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# onsets


def _pick_peaks(flux: np.ndarray, hop_s: float) -> np.ndarray:
    """Indices of onset peaks in a flux curve (librosa-style max/mean/wait picking)."""
    n = len(flux)
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    env = flux / max(float(flux.max()), _FLUX_FLOOR)
    pre_max = post_max = max(1, round(0.03 / hop_s))
    pre_avg, post_avg = max(1, round(0.10 / hop_s)), max(1, round(0.07 / hop_s))
    wait = max(1, round(0.08 / hop_s))

    padded = np.pad(env, (pre_max, post_max), constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max + 1).max(axis=1)
    csum = np.concatenate([[0.0], np.cumsum(env)])
    idx = np.arange(n)
    lo = np.maximum(idx - pre_avg, 0)
    hi = np.minimum(idx + post_avg + 1, n)
    local_mean = (csum[hi] - csum[lo]) / (hi - lo)
    candidates = np.flatnonzero((env >= local_max) & (env >= local_mean + _DELTA) & (env >= local_mean * _RATIO))

    picked: list[int] = []
    for i in candidates.tolist():
        if not picked or i - picked[-1] > wait:
            picked.append(i)
    return np.asarray(picked, dtype=np.int64)


def _onset_envelope(onset_frames: np.ndarray, n_frames: int, fps: Fraction) -> np.ndarray:
    """1.0 at each onset frame, then exp(-dt / ONSET_DECAY_S) until the next one."""
    last = np.full(n_frames, -1, dtype=np.int64)
    if len(onset_frames):
        last[onset_frames] = onset_frames
    last = np.maximum.accumulate(last) if n_frames else last
    dt = (np.arange(n_frames) - last) / float(fps)
    env = np.where(last >= 0, np.exp(-dt / ONSET_DECAY_S), 0.0)
    return env.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# public API


def analyze(samples: np.ndarray, sample_rate: int, fps: Fraction, n_frames: int | None = None) -> AudioFeatures:
    """Per-frame loudness, onsets and band energies of ``samples`` (mono float in [-1, 1]).

    ``n_frames`` defaults to the frames that cover the audio (``ceil(duration * fps)``); when given,
    the features are cut to it or padded with silence (audio shorter than the video).
    """
    fps = parse_fps(fps)
    sample_rate = int(sample_rate)
    if sample_rate < 1000:
        raise InputError(f"audio sample rate {sample_rate} Hz is too low: decode at e.g. {SAMPLE_RATE} Hz")
    x = _to_mono(samples)
    if n_frames is None:
        n_frames = _frames_for(len(x), sample_rate, fps)
    n_frames = int(n_frames)
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")

    bounds = _frame_bounds(n_frames, sample_rate, fps)
    starts, ends = bounds[:-1], bounds[1:]

    # loudness: exact per-frame RMS (past the end = silence)
    loud_db = 10.0 * np.log10(np.maximum(_frame_mean_square(x, starts, ends), 1e-20))
    loudness = _follow(_db_to_unit(loud_db), fps)

    # one STFT pass for onsets and bands
    n_fft, hop = _stft_params(sample_rate)
    flux, band_power = _stft_flux_bands(x, sample_rate, n_fft, hop)
    n_hops = len(flux)

    # onsets: peaks of the flux. The flux of window i is the change since window i-1, timed at
    # its centre plus half a hop (measured on clicks: this centres the error within +-6 ms).
    centres = np.arange(n_hops) * hop
    flux[(centres < n_fft // 2) | (centres + n_fft // 2 > len(x))] = 0.0  # the segment's cut edges are not onsets
    peaks = _pick_peaks(flux, hop / sample_rate)
    frames = np.unique(_sample_to_frame(peaks * hop + hop // 2, sample_rate, fps))
    onset_frames = frames[(frames >= 0) & (frames < n_frames)].astype(np.int64)
    onsets = _onset_envelope(onset_frames, n_frames, fps)

    # bands: mean over the STFT windows centred in each video frame (the nearest one if none is)
    cband = np.concatenate([np.zeros((1, 3)), np.cumsum(band_power, axis=0)])
    i0 = np.minimum(-((-starts) // hop), n_hops)  # first window centred at or after the frame start
    i1 = np.minimum(-((-ends) // hop), n_hops)
    count = i1 - i0
    sums = cband[i1] - cband[i0]
    nearest = np.clip((starts + ends) // 2 // hop, 0, n_hops - 1)
    empty = count == 0
    sums[empty] = band_power[nearest[empty]]
    band_ms = sums / np.where(empty, 1, count)[:, None]
    band_ms[starts >= len(x)] = 0.0  # after the audio ends
    bands = [_follow(_db_to_unit(10.0 * np.log10(np.maximum(band_ms[:, k], 1e-20))), fps) for k in range(3)]

    return AudioFeatures(
        fps=fps,
        loudness=loudness.astype(np.float32),
        onsets=onsets,
        onset_frames=onset_frames,
        low=bands[0],
        mid=bands[1],
        high=bands[2],
    )


def analyze_file(
    path,
    fps: Fraction,
    start: float = 0.0,
    duration: float | None = None,
    n_frames: int | None = None,
) -> AudioFeatures:
    """Decode ``path``'s audio (mono, 22050 Hz, from ``start`` for ``duration`` seconds) and analyse it.

    Args:
        path: an audio file, or a video with a sound track.
        fps: the frame rate to align the features to (a Fraction: 24000/1001 stays exact).
        start: seconds into the file where the analysis starts (>= 0).
        duration: seconds to analyse; None = to the end.
        n_frames: the number of frames wanted (padded or cut); None = as many as the sound lasts.

    Returns:
        AudioFeatures: per-frame loudness, onsets, low, mid and high (each 0..1) and the onset frames.

    Raises:
        InputError: the file is missing, has no sound or cannot be read.
        MediaError: ffmpeg failed on a file that looked valid.
    """
    samples = read_audio(path, sample_rate=SAMPLE_RATE, start=start, duration=duration)
    return analyze(samples, SAMPLE_RATE, fps, n_frames=n_frames)


def save_features(f: AudioFeatures, path) -> None:
    """Write features to an .npz cache (atomically: a half-written cache is never left behind)."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        version=np.int64(_FORMAT_VERSION),
        fps=np.array([f.fps.numerator, f.fps.denominator], dtype=np.int64),
        onset_frames=np.asarray(f.onset_frames, dtype=np.int64),
        **{name: np.asarray(f.feature(name), dtype=np.float32) for name in FEATURES},
    )
    write_atomic(path, buf.getvalue(), unique=True)  # unique: two renders may share one cache


def load_features(path) -> AudioFeatures:
    """Read features written by :func:`save_features`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"audio features file {str(path)!r} does not exist: run `dreamvideo analyze` or delete the path"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != _FORMAT_VERSION:
                raise InputError(
                    f"audio features file {str(path)!r} has format {int(data['version'])}, "
                    f"expected {_FORMAT_VERSION}: delete it so it is re-analysed"
                )
            num, den = (int(v) for v in data["fps"])
            arrays = {name: data[name].astype(np.float32) for name in FEATURES}
            onset_frames = data["onset_frames"].astype(np.int64)
        return AudioFeatures(fps=Fraction(num, den), onset_frames=onset_frames, **arrays)
    except InputError:
        raise
    except Exception as err:  # zip/npz/key/shape errors
        raise InputError(
            f"audio features file {str(path)!r} is unreadable ({type(err).__name__}): delete it so it is re-analysed"
        ) from None


# ----------------------------------------------------------------------------------------------
# plot

_COLORS = {  # RGB
    "loudness": (90, 200, 255),
    "onsets": (255, 170, 60),
    "low": (235, 80, 80),
    "mid": (110, 220, 110),
    "high": (190, 130, 255),
}
_BG = (18, 18, 24)
_LANE_BG = (32, 32, 42)
_TEXT = (225, 225, 225)
_GRID = (60, 60, 74)
_ONSET_LINE = (255, 235, 120)


def _nice_step(duration: float, max_ticks: int) -> float:
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if duration / step <= max_ticks:
            return float(step)
    return 3600.0 * math.ceil(duration / max_ticks / 3600.0)


def _fmt_time(t: float, step: float) -> str:
    if step >= 60 or t >= 600:
        return f"{int(t) // 60}:{int(t) % 60:02d}"
    return f"{t:g}s"


def _columns(values: np.ndarray, width: int) -> np.ndarray:
    """One value per pixel column: the max of the frames it covers (peaks stay visible)."""
    n = len(values)
    if n == 0:
        return np.zeros(width)
    edges = (np.arange(width + 1) * n) // width
    lo = np.minimum(edges[:-1], n - 1)
    hi = np.maximum(edges[1:], lo + 1)
    out = np.array([values[a:b].max() for a, b in zip(lo.tolist(), hi.tolist())])
    return out


def plot_features(f: AudioFeatures, width: int = 1200, height: int = 600) -> np.ndarray:
    """An HxWx3 uint8 RGB picture of the features: one lane each, onsets as vertical lines, time in seconds.

    Args:
        f: the features (``analyze_file``).
        width, height: picture size in pixels (at least 240x160).

    Returns:
        The picture as an HxWx3 uint8 RGB array (write it with any image writer).

    Raises:
        ConfigError: ``width`` is under 240 or ``height`` under 160.
    """
    import cv2

    width, height = int(width), int(height)
    if width < 240 or height < 160:
        raise ConfigError(f"plot size {width}x{height} is too small: use at least 240x160, e.g. 1200x600")
    img = np.empty((height, width, 3), np.uint8)
    img[:] = _BG
    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = float(np.clip(min(width / 1800.0, height / 900.0) * 0.75 + 0.15, 0.35, 0.7))
    thick = 1

    left, right = int(80 * fs / 0.5), 16
    top, bottom = int(34 * fs / 0.5), int(40 * fs / 0.5)
    plot_w = width - left - right
    plot_h = height - top - bottom
    gap = 6
    lane_h = (plot_h - gap * (len(FEATURES) - 1)) // len(FEATURES)

    n = f.n_frames
    dur = f.duration
    fps_txt = str(f.fps.numerator) if f.fps.denominator == 1 else f"{f.fps.numerator}/{f.fps.denominator}"
    title = f"audio features | {dur:.2f} s | {n} frames at {fps_txt} fps | {len(f.onset_frames)} onsets"
    cv2.putText(img, title, (left, int(top * 0.7)), font, fs, _TEXT, thick, cv2.LINE_AA)

    def x_of(frame_pos: np.ndarray) -> np.ndarray:
        return left + (np.asarray(frame_pos, dtype=np.float64) / max(n, 1)) * (plot_w - 1)

    lanes_top = [top + i * (lane_h + gap) for i in range(len(FEATURES))]
    for y0 in lanes_top:
        img[y0 : y0 + lane_h, left : left + plot_w] = _LANE_BG

    # time grid and axis
    step = _nice_step(dur, max(2, plot_w // int(90 * fs / 0.5)))
    axis_y = top + plot_h + 4
    t = 0.0
    while n and t <= dur + 1e-9:
        x = int(round(float(x_of(np.array(t * float(f.fps))))))
        for y0 in lanes_top:
            cv2.line(img, (x, y0), (x, y0 + lane_h - 1), _GRID, 1)
        cv2.line(img, (x, axis_y), (x, axis_y + 5), _TEXT, 1)
        label = _fmt_time(round(t, 3), step)
        (tw, th), _ = cv2.getTextSize(label, font, fs * 0.9, thick)
        tx = int(np.clip(x - tw // 2, 0, width - tw - 1))
        cv2.putText(img, label, (tx, axis_y + 8 + th), font, fs * 0.9, _TEXT, thick, cv2.LINE_AA)
        t = round(t + step, 6)
    cv2.line(img, (left, axis_y), (left + plot_w - 1, axis_y), _TEXT, 1)

    # onsets: vertical lines through every lane
    for frame in np.asarray(f.onset_frames).tolist():
        x = int(round(float(x_of(np.array(frame + 0.5)))))
        for y0 in lanes_top:
            cv2.line(img, (x, y0), (x, y0 + lane_h - 1), _ONSET_LINE, 1)

    # curves: filled area + outline, one lane per feature
    xs = np.arange(plot_w) + left
    for name, y0 in zip(FEATURES, lanes_top):
        cols = np.clip(_columns(f.feature(name), plot_w), 0.0, 1.0)
        ys = (y0 + lane_h - 1 - cols * (lane_h - 2)).round().astype(np.int32)
        color = _COLORS[name]
        fill = tuple(int(c * 0.45 + b * 0.55) for c, b in zip(color, _LANE_BG))
        if n:
            poly = np.concatenate(
                [
                    np.stack([xs, ys], axis=1),
                    np.array([[xs[-1], y0 + lane_h - 1], [xs[0], y0 + lane_h - 1]]),
                ]
            ).astype(np.int32)
            cv2.fillPoly(img, [poly], fill, cv2.LINE_AA)
            cv2.polylines(img, [np.stack([xs, ys], axis=1).astype(np.int32)], False, color, 1, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(name, font, fs, thick)
        cv2.putText(img, name, (max(2, left - tw - 8), y0 + lane_h // 2 + th // 2), font, fs, color, thick, cv2.LINE_AA)

    if n:  # re-draw onset ticks over the fills so they stay visible
        for frame in np.asarray(f.onset_frames).tolist():
            x = int(round(float(x_of(np.array(frame + 0.5)))))
            y0 = lanes_top[FEATURES.index("onsets")]
            cv2.line(img, (x, y0), (x, y0 + lane_h - 1), _ONSET_LINE, 1)
    else:
        cv2.putText(img, "no audio frames", (left + 10, top + plot_h // 2), font, fs, _TEXT, thick, cv2.LINE_AA)
    return img
