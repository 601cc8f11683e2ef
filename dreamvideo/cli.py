"""The `dreamvideo` command line. The only module that prints, exits or draws progress bars.

Heavy imports (TensorFlow, OpenCV) happen inside the commands, so `dreamvideo --help` is instant.
Library errors (dreamvideo.errors) become one line on stderr and exit status 1; option validation
in the signatures exits 2 with Typer's own message.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from . import __version__
from .errors import DreamVideoError

app = typer.Typer(
    name="dreamvideo",
    help="DeepDream renderer for video, infinite zooms and overnight batches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="List presets, or show one fully resolved.", invoke_without_command=True)
app.add_typer(presets_app, name="presets")


class Loss(str, Enum):
    mean = "mean"
    meansquare = "meansquare"


class Flow(str, Enum):
    dis_fast = "dis-fast"
    dis_medium = "dis-medium"
    farneback = "farneback"


class Warp(str, Enum):
    detail = "detail"
    frame = "frame"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dreamvideo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """DeepDream renderer for video, infinite zooms and overnight batches."""


# --- shared options ------------------------------------------------------------------------------

PresetOpt = Annotated[Optional[str], typer.Option("--preset", "-p", help="Preset name or .toml path (see `dreamvideo presets`).")]
ModelOpt = Annotated[Optional[str], typer.Option(help="Model (see `dreamvideo models`); default inception_v3, else efficientnet_lite0 offline.")]
WeightsOpt = Annotated[Optional[Path], typer.Option(help="Local weights file for the model (offline machines).", dir_okay=False)]
LayersOpt = Annotated[Optional[str], typer.Option(help="Comma-separated layers to dream on, e.g. mixed3,mixed5.")]
OctavesOpt = Annotated[Optional[int], typer.Option(min=1, help="Octave pyramid levels.")]
OctScaleOpt = Annotated[Optional[float], typer.Option("--octave-scale", min=1.01, help="Size ratio between octaves.")]
StepsOpt = Annotated[Optional[int], typer.Option(min=0, help="Gradient steps per octave (0 = no dreaming).")]
StepSizeOpt = Annotated[Optional[float], typer.Option("--step-size", min=0.0, help="Step size in [-1,1] image units.")]
JitterOpt = Annotated[Optional[int], typer.Option(min=0, help="Max random roll per step, pixels.")]
TileOpt = Annotated[Optional[int], typer.Option("--tile-size", min=64, help="Max tile side for gradients, pixels (bounds memory).")]
LossOpt = Annotated[Optional[Loss], typer.Option(help="Objective: mean activation or mean square.")]
MaxSideOpt = Annotated[Optional[int], typer.Option("--max-side", min=32, help="Downscale so the longer side is at most this.")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Random seed (same seed + input + settings = same output).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Any setting as KEY=VALUE, e.g. --set detail_decay=0.9 (repeatable).")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output file (.mp4 .mov .mkv .webm .gif .png .jpg .webp) or folder/ for PNG frames.")]


def _dream_overrides(**kw: Any) -> dict[str, Any]:
    """CLI values that were given (not None) as flat settings keys."""
    out: dict[str, Any] = {}
    for key, value in kw.items():
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def _parse_set(items: list[str] | None) -> dict[str, Any]:
    """--set key=value pairs; values are parsed as TOML scalars when they can be (numbers, booleans)."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise DreamVideoError(f"--set {item!r} is not KEY=VALUE: use e.g. --set blend=0.2")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def _settings(preset: str | None, overrides: dict[str, Any]) -> Any:
    """defaults < preset < CLI flags."""
    from .config import merge
    from .presets import load_preset

    return merge(load_preset(preset), overrides, source="command line")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and a non-zero exit, never a traceback."""
    try:
        yield
    except DreamVideoError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: finished frames are kept; run the same command again to resume", err=True)
        raise typer.Exit(130) from None


def _note(message: str) -> None:
    typer.echo(f"note: {message}", err=True)


class _Progress:
    """A tqdm bar fed by the library's progress callback (frames done, estimated total)."""

    def __init__(self, unit: str = "frame", desc: str = "dreaming"):
        self.bar = None
        self.unit = unit
        self.desc = desc

    def __call__(self, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, dynamic_ncols=True, file=sys.stderr)
        if total is not None and self.bar.total != total:
            self.bar.total = total  # headers lie about frame counts: follow the truth as it comes
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _command_line() -> str:
    return shlex.join(["dreamvideo", *sys.argv[1:]])


# --- image ---------------------------------------------------------------------------------------


@app.command()
def image(
    input: Annotated[Path, typer.Argument(help="Input image (PNG, JPEG, WebP, ...).")],
    output: OutputOpt,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    layers: LayersOpt = None,
    octaves: OctavesOpt = None,
    octave_scale: OctScaleOpt = None,
    steps: StepsOpt = None,
    step_size: StepSizeOpt = None,
    jitter: JitterOpt = None,
    tile_size: TileOpt = None,
    loss: LossOpt = None,
    max_side: MaxSideOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
) -> None:
    """Dream one image."""
    with _user_errors():
        from .render import render_image

        overrides = _dream_overrides(model=model, weights=weights, layers=layers, octaves=octaves,
                                     octave_scale=octave_scale, steps=steps, step_size=step_size, jitter=jitter,
                                     tile_size=tile_size, loss=loss, max_side=max_side, seed=seed)
        overrides.update(_parse_set(set_))
        settings = _settings(preset, overrides)
        start = time.perf_counter()
        result = render_image(input, output, settings, command=_command_line(), on_note=_note)
        typer.echo(f"wrote {result.output} ({result.width}x{result.height}, {result.model}, "
                   f"{time.perf_counter() - start:.1f} s)")


# --- video ---------------------------------------------------------------------------------------

FlowOpt = Annotated[Optional[Flow], typer.Option(help="Optical flow for coherence.")]
WarpOpt = Annotated[Optional[Warp], typer.Option(help="Carry the dream 'detail' (dream minus raw) or the whole 'frame'.")]
BlendOpt = Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Raw frame mixed into the warped dream: 0 = all dream, 1 = all raw.")]
WarmStepsOpt = Annotated[Optional[int], typer.Option("--warm-steps", min=0, help="Steps per octave for frames seeded from the previous dream.")]
StartOpt = Annotated[Optional[float], typer.Option(min=0.0, help="Start this many seconds into the source.")]
DurationOpt = Annotated[Optional[float], typer.Option(min=0.001, help="Seconds of source to render.")]
MaxFramesOpt = Annotated[Optional[int], typer.Option("--max-frames", min=1, help="Stop after this many frames.")]
CrfOpt = Annotated[Optional[int], typer.Option(min=0, max=51, help="Quality: H.264/VP9 CRF (lower = better, bigger).")]
ScheduleOpt = Annotated[Optional[list[str]], typer.Option("--schedule", help='Keyframes in seconds, e.g. "step_size=0:0.01,10:0.03" (repeatable).')]
ReactOpt = Annotated[Optional[list[str]], typer.Option("--react", help='Audio reaction, e.g. "step_size=loudness:0.01..0.04" (repeatable).')]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue an interrupted render from its finished frames.")]


@app.command()
def video(
    input: Annotated[Path, typer.Argument(help="Input video (anything ffmpeg/OpenCV reads).")],
    output: OutputOpt,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    layers: LayersOpt = None,
    octaves: OctavesOpt = None,
    octave_scale: OctScaleOpt = None,
    steps: StepsOpt = None,
    step_size: StepSizeOpt = None,
    jitter: JitterOpt = None,
    tile_size: TileOpt = None,
    loss: LossOpt = None,
    max_side: MaxSideOpt = None,
    seed: SeedOpt = None,
    flow: FlowOpt = None,
    warp: WarpOpt = None,
    blend: BlendOpt = None,
    warm_steps: WarmStepsOpt = None,
    independent: Annotated[bool, typer.Option("--independent", help="Dream every frame from scratch (boils; for comparison).")] = False,
    start: StartOpt = None,
    duration: DurationOpt = None,
    max_frames: MaxFramesOpt = None,
    crf: CrfOpt = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the source's sound.")] = False,
    schedule: ScheduleOpt = None,
    react: ReactOpt = None,
    report: Annotated[bool, typer.Option("--report", help="Print flicker, dream strength and drift.")] = False,
    resume: ResumeOpt = True,
    set_: SetOpt = None,
) -> None:
    """Dream a video, coherent in time, at the source's exact frame rate, with its audio."""
    with _user_errors():
        from .render import render_video

        overrides = _dream_overrides(model=model, weights=weights, layers=layers, octaves=octaves,
                                     octave_scale=octave_scale, steps=steps, step_size=step_size, jitter=jitter,
                                     tile_size=tile_size, loss=loss, max_side=max_side, seed=seed, flow=flow,
                                     warp=warp, blend=blend, warm_steps=warm_steps, start=start, duration=duration,
                                     max_frames=max_frames, crf=crf)
        if independent:
            overrides["coherent"] = False
        if no_audio:
            overrides["audio"] = False
        if schedule:
            overrides["schedule"] = schedule
        if react:
            overrides["react"] = react
        overrides.update(_parse_set(set_))
        settings = _settings(preset, overrides)
        progress = _Progress()
        try:
            result = render_video(input, output, settings, command=_command_line(), on_progress=progress,
                                  on_note=_note, resume=resume)
        finally:
            progress.close()
        typer.echo(f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, {result.model}, "
                   f"{result.seconds:.1f} s)")
        if report:
            _print_metrics(result.metrics)


def _print_metrics(metrics: dict[str, float]) -> None:
    labels = {"flicker": "flicker (output / input, along the motion)", "strength": "dream strength (mean |out-in|, 0-255)",
              "drift_per_100_frames": "brightness drift per 100 frames (0-255)"}
    for key, value in metrics.items():
        typer.echo(f"  {labels.get(key, key)}: {value}")


# --- analyze -------------------------------------------------------------------------------------


@app.command()
def analyze(
    input: Annotated[Path, typer.Argument(help="An audio or video file with sound.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Plot image (.png or .jpg).")],
    fps: Annotated[Optional[str], typer.Option(help="Frame rate to align features to (default: the video's, else 30).")] = None,
    start: StartOpt = None,
    duration: DurationOpt = None,
) -> None:
    """Plot loudness, onsets and band energies over time: what --react will drive the dream with."""
    with _user_errors():
        from .audio import analyze_file, write_plot
        from .config import parse_fps
        from .probe import probe

        info = probe(input)
        rate = parse_fps(fps) if fps else (info.fps or parse_fps(30))
        features = analyze_file(input, rate, start=start or 0.0, duration=duration)
        write_plot(features, output)
        typer.echo(f"wrote {output} ({features.duration:.1f} s at {rate} fps, {len(features.onset_frames)} onsets)")


# --- zoom ----------------------------------------------------------------------------------------


@app.command()
def zoom(
    output: OutputOpt,
    input: Annotated[Optional[Path], typer.Argument(help="Start image (PNG, JPEG, WebP, ...); or use --noise.")] = None,
    noise: Annotated[bool, typer.Option("--noise", help="Start from seeded noise instead of an image.")] = False,
    seconds: Annotated[Optional[float], typer.Option(help="Length of the animation in seconds (default 10).")] = None,
    fps: Annotated[Optional[str], typer.Option(help="Frames per second, exact: 30, 29.97 or 24000/1001 (default 30).")] = None,
    zoom_per_second: Annotated[Optional[float], typer.Option("--zoom-per-second", help="Scale factor per second: > 1 dives in, < 1 pulls out (default 1.3).")] = None,
    rotate_per_second: Annotated[Optional[float], typer.Option("--rotate-per-second", help="Degrees per second, counter-clockwise.")] = None,
    translate_per_second: Annotated[Optional[str], typer.Option("--translate-per-second", help="Camera drift X,Y in widths/heights per second, e.g. 0.05,0.")] = None,
    center: Annotated[Optional[str], typer.Option(help="Zoom/rotation centre X,Y as fractions of width/height, e.g. 0.3,0.6.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Make the last frame lead into the first: the file repeats seamlessly.")] = False,
    loop_seconds: Annotated[Optional[float], typer.Option("--loop-seconds", help="Length of the cross-fade that closes a loop (default 1).")] = None,
    size: Annotated[Optional[str], typer.Option(help="Animation size WxH, e.g. 640x360 (default: the image's, after --max-side).")] = None,
    audio: Annotated[Optional[Path], typer.Option(help="Sound track to mux in, cut to the animation (also drives --react).", dir_okay=False)] = None,
    preset: PresetOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    layers: LayersOpt = None,
    octaves: OctavesOpt = None,
    steps: StepsOpt = None,
    step_size: StepSizeOpt = None,
    max_side: MaxSideOpt = None,
    seed: SeedOpt = None,
    warm_steps: WarmStepsOpt = None,
    crf: CrfOpt = None,
    schedule: ScheduleOpt = None,
    react: ReactOpt = None,
    resume: ResumeOpt = True,
    set_: SetOpt = None,
) -> None:
    """Infinite zoom: from an image (or --noise), each frame is the last one moved by the camera and dreamed again."""
    with _user_errors():
        from .zoom import render_zoom

        overrides = _dream_overrides(model=model, weights=weights, layers=layers, octaves=octaves, steps=steps,
                                     step_size=step_size, max_side=max_side, seed=seed, warm_steps=warm_steps,
                                     crf=crf, seconds=seconds, fps=fps, zoom_per_second=zoom_per_second,
                                     rotate_per_second=rotate_per_second, translate_per_second=translate_per_second,
                                     center=center, loop_seconds=loop_seconds, size=size)
        if noise:
            overrides["noise"] = True
        if loop:
            overrides["loop"] = True
        if schedule:
            overrides["schedule"] = schedule
        if react:
            overrides["react"] = react
        overrides.update(_parse_set(set_))
        settings = _settings(preset, overrides)
        progress = _Progress()
        try:
            result = render_zoom(input, output, settings, command=_command_line(), on_progress=progress,
                                 on_note=_note, resume=resume, audio=audio)
        finally:
            progress.close()
        typer.echo(f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, {result.model}, "
                   f"{result.seconds:.1f} s)")
        if settings.zoom.loop and "seam" in result.metrics:
            typer.echo(f"  loop seam (mean |last - first|, 0-255): {result.metrics['seam']}; "
                       f"median step between frames: {result.metrics.get('median_step')}")


# --- batch ---------------------------------------------------------------------------------------


@app.command()
def batch(
    manifest: Annotated[Path, typer.Argument(help="Batch manifest (.toml): defaults, then a table per job (see samples/night.toml).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would run, with estimated frames and time; render nothing.")] = False,
) -> None:
    """Render a manifest of jobs: finished ones are skipped, an interrupted one resumes, a failed one does not stop the rest."""
    with _user_errors():
        from .batch import format_summary, load_manifest, run_batch

        loaded = load_manifest(manifest)
        progress = _Progress()

        def event(line: str) -> None:
            progress.close()  # each job gets its own bar; a line ends the current one
            progress.bar = None
            typer.echo(line)

        try:
            summary = run_batch(loaded, dry_run=dry_run, on_event=event, on_progress=progress,
                                command=_command_line())
        finally:
            progress.close()
        for line in format_summary(summary):
            typer.echo(line)
        if summary.failed:
            raise typer.Exit(1)


# --- presets -------------------------------------------------------------------------------------


@presets_app.callback()
def presets_list(ctx: typer.Context) -> None:
    """List presets, a line each."""
    if ctx.invoked_subcommand is not None:
        return
    from .presets import list_presets

    for p in list_presets():
        typer.echo(f"{p.name:<18} {p.description}")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name or .toml path.")]) -> None:
    """Show a preset's fully resolved settings (TOML)."""
    with _user_errors():
        from .presets import read_preset, load_preset

        p = read_preset(name)
        typer.echo(f"# {p.name}: {p.description}\n# from {p.path}")
        typer.echo(_to_toml(load_preset(name).to_dict()))


def _to_toml(data: dict[str, Any]) -> str:
    """Minimal TOML writer for resolved settings (flat tables of scalars and lists)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {scalar(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            for k, v in value.items():
                lines.append(f"{k} = {scalar(v)}" if v is not None else f"# {k} = (unset)")
    return "\n".join(lines)


# --- models & doctor -----------------------------------------------------------------------------


@app.command()
def models(
    name: Annotated[Optional[str], typer.Argument(help="A model, to see its details.")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="List the layers one can dream on.")] = False,
) -> None:
    """Each model, its default layers, and where its weights come from right now."""
    with _user_errors():
        from .model import find_weights, get_spec, model_names

        names = [name] if name else model_names()
        for n in names:
            spec = get_spec(n)
            src = find_weights(spec, None)
            if layers:
                typer.echo(f"{spec.name}: " + " ".join(spec.layers))
                continue
            typer.echo(f"{spec.name:<20} {spec.description}")
            typer.echo(f"{'':<20} default layers: {','.join(spec.default_layers)}")
            typer.echo(f"{'':<20} weights: {src.kind} - {src.detail}")


@app.command()
def doctor() -> None:
    """Check ffmpeg, TensorFlow and its devices, each model's weights, and the cache folders."""
    from .doctor import run_checks

    problems = 0
    for check in run_checks():
        mark = "OK " if check.ok else "FIX"
        typer.echo(f"[{mark}] {check.name}: {check.detail}")
        problems += 0 if check.ok else int(check.required)
    if problems:
        raise typer.Exit(1)


def run() -> None:
    """The console entry point: the app, then a prompt exit once TensorFlow is loaded.

    Interpreter teardown with TensorFlow and a built model loaded takes 1-4 s after the work is
    done (bench/bench_startup.py). Exit handlers still run and output is flushed; then the process
    ends without that teardown.
    """
    import os

    try:
        app()  # always ends in SystemExit (click's standalone mode)
        code: Any = 0
    except SystemExit as done:
        code = done.code
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    if isinstance(code, str):  # what SystemExit would print
        print(code, file=sys.stderr)
    import atexit

    atexit._run_exitfuncs()  # temp folders, Ray, logging: what normal exit would run
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":  # pragma: no cover
    run()
