"""The `dreamvideo` command line. The only module that prints, exits or draws progress bars.

Heavy imports (TensorFlow, OpenCV) happen inside the commands, so `dreamvideo --help` is instant.
Library errors (dreamvideo.errors) become one line on stderr and exit status 1; option validation
in the signatures exits 2 with Typer's own message.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, get_type_hints

import typer

from . import __version__
from .config import RULES, Rule, Settings, default_value, merge
from .encode import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .errors import ConfigError, DreamVideoError
from .timing import parse_fps

app = typer.Typer(
    name="dreamvideo",
    help="DeepDream renderer for video, infinite zooms and overnight batches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="List presets, or show one fully resolved.", invoke_without_command=True)
app.add_typer(presets_app, name="presets")


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
    _bytes_safe_streams()


def _bytes_safe_streams() -> None:
    """File names with bytes that are not UTF-8 print as those bytes (as ls does), never a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="surrogateescape")


# --- options derived from the settings ------------------------------------------------------------
# Every setting in config.RULES becomes a flag on the commands its rule names, in its help panel,
# with its range and default in the help text: a new setting needs no edit here.

PresetOpt = Annotated[
    Optional[str],
    typer.Option(
        "--preset", "-p", rich_help_panel="Dream", help="Preset name or .toml path (see `dreamvideo presets`)."
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set", rich_help_panel="Dream", help="Any setting as KEY=VALUE, e.g. --set detail_decay=0.9 (repeatable)."
    ),
]
ScheduleOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--schedule",
        rich_help_panel="Music",
        help='Keyframes in seconds, e.g. "step_size=0:0.01,10:0.03" (repeatable).',
    ),
]
ReactOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--react", rich_help_panel="Music", help='Audio reaction, e.g. "step_size=loudness:0.01..0.04" (repeatable).'
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume",
        rich_help_panel="Output",
        help="Continue an interrupted render from its finished frames.",
    ),
]
_STILL = ", ".join(IMAGE_SUFFIXES)
_MOVING = " ".join(VIDEO_SUFFIXES)
ImageOut = Annotated[str, typer.Option("--output", "-o", rich_help_panel="Output", help=f"Output image: {_STILL}.")]
VideoOut = Annotated[
    str,
    typer.Option(
        "--output", "-o", rich_help_panel="Output", help=f"Output video ({_MOVING}) or a folder/ for PNG frames."
    ),
]
RayOpt = Annotated[
    Optional[str],
    typer.Option(
        "--ray",
        rich_help_panel="Cluster",
        metavar="ADDRESS|auto|local",
        help="Render on a Ray cluster: auto (the one this machine joined), HOST:PORT, or local (started for this run). "
        'Needs pip install "dreamvideo\\[ray]".',  # \\[ : rich markup would take [ray] for a style
    ),
]
WorkersOpt = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        min=1,
        max=4096,
        rich_help_panel="Cluster",
        help="Ray workers (default: one per GPU, else one per node with all its CPUs); "
        "implies --ray local if no --ray.",
    ),
]
SegmentsOpt = Annotated[
    int,
    typer.Option(
        "--segments",
        min=1,
        max=1024,
        rich_help_panel="Cluster",
        help="Split each video job into this many segments rendered in parallel, then joined (a job's own "
        "segments setting above 1 wins); > 1 implies --ray local if no --ray.",
    ),
]
_TYPES = {"int": int, "float": float}


_PANELS = ("Dream", "Coherence", "Camera", "Input", "Music", "Output", "Cluster")  # --help shows them in this order


def _default_text(name: str, rule: Rule) -> str:
    """'default 24', 'default --coherent', '' for unset (the help says what unset means)."""
    value = default_value(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        on, off = (rule.flag or f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}").split("/")
        return f"default {on if value else off}"
    if isinstance(value, tuple):
        value = ",".join(format(v, "g") if isinstance(v, float) else str(v) for v in value)
    return f"default {value}"


def _panel_index(param: inspect.Parameter) -> int:
    """Arguments first, then options in panel order (Typer lists panels as their first option comes)."""
    info = next((m for m in getattr(param.annotation, "__metadata__", ()) if hasattr(m, "rich_help_panel")), None)
    if info is None or isinstance(info, typer.models.ArgumentInfo):
        return -1
    panel = info.rich_help_panel
    return _PANELS.index(panel) if panel in _PANELS else len(_PANELS)


def _setting_option(name: str, rule: Rule) -> Any:
    """The Annotated type of the flag for one setting (None = not given on the command line)."""
    flag = rule.flag or "--" + name.replace("_", "-")
    facts = [rule.describe().replace("within ", "")] if rule.kind in ("int", "float", "fps") else []
    facts += [d] if (d := _default_text(name, rule)) else []
    text = rule.help + (f" ({'; '.join(facts)})" if facts else "")
    info = typer.Option(flag, help=text, rich_help_panel=rule.panel, show_default=False)
    if rule.kind == "bool":
        kind: Any = bool
    elif rule.kind == "choice":
        kind = Enum(name.title().replace("_", ""), [(c, c) for c in rule.choices], type=str)  # type: ignore[misc]
    else:
        kind = _TYPES.get(rule.kind, str)
    return Annotated[Optional[kind], info]


def with_settings(command: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a command taking ``given`` (flat settings given as flags): it gains one flag per
    setting whose rule lists ``command``; the values given (not None) arrive in ``given``."""
    names = [n for n, r in RULES.items() if command in r.commands]

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name != "given"]
        extra = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_setting_option(n, RULES[n]))
            for n in names
        ]

        @functools.wraps(fn)
        def command_fn(**kw: Any) -> None:
            given = {}
            for n in names:
                value = kw.pop(n)
                if value is not None:
                    given[n] = value.value if isinstance(value, Enum) else value
            fn(**kw, given=given)

        params = sorted([p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra, key=_panel_index)
        command_fn.__signature__ = sig.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
        command_fn.__annotations__ = {p.name: p.annotation for p in params}
        return command_fn

    return decorate


def _parse_set(items: list[str] | None) -> dict[str, Any]:
    """--set key=value pairs; values are parsed as TOML scalars when they can be (numbers, booleans)."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE: use e.g. --set blend=0.2")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def _settings(
    preset: str | None,
    given: dict[str, Any],
    set_: list[str] | None = None,
    schedule: list[str] | None = None,
    react: list[str] | None = None,
) -> Settings:
    """defaults < preset < flags < --set (flags and --set are both the command line)."""
    from .presets import load_preset

    data: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items()}
    if schedule:
        data["schedule"] = schedule
    if react:
        data["react"] = react
    data.update(_parse_set(set_))
    return merge(load_preset(preset), data, source="command line")


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
    except OSError as err:  # a file-system fault the library did not foresee: still one line, not a traceback
        where = f" ({os.fsdecode(err.filename)!r})" if err.filename else ""
        typer.echo(f"error: {err.strerror or err}{where}: check the disk and the paths given", err=True)
        raise typer.Exit(1) from None


def _note(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"note: {message}", file=sys.stderr)  # on a line of its own, above a running progress bar
    sys.stderr.flush()  # before the next stdout line, so a pipe (or a test) reads them in order


def _warn(result: Any) -> None:
    """A render's warnings (output that is not what was asked), a line each, after its progress bar."""
    for message in getattr(result, "warnings", None) or []:
        typer.echo(f"warning: {message}", err=True)


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

    def write(self, line: str) -> None:
        """A line above the bar, which stays (one bar over a whole cluster run)."""
        if self.bar is None:
            typer.echo(line)
        else:
            self.bar.write(line, file=sys.stdout)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _command_line() -> str:
    return shlex.join(["dreamvideo", *sys.argv[1:]])


# --- image ---------------------------------------------------------------------------------------


@app.command()
@with_settings("image")
def image(
    input: Annotated[Path, typer.Argument(help="Input image (PNG, JPEG, WebP, ...).")],
    output: ImageOut,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    given: dict[str, Any] | None = None,
) -> None:
    """Dream one image."""
    with _user_errors():
        settings = _settings(preset, given or {}, set_)
        from .render import render_image

        start = time.perf_counter()
        result = render_image(input, output, settings, command=_command_line(), on_note=_note)
        typer.echo(
            f"wrote {result.output} ({result.width}x{result.height}, {result.model}, "
            f"{time.perf_counter() - start:.1f} s)"
        )


# --- video ---------------------------------------------------------------------------------------


@app.command()
@with_settings("video")
def video(
    input: Annotated[Path, typer.Argument(help="Input video (anything ffmpeg/OpenCV reads).")],
    output: VideoOut,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    schedule: ScheduleOpt = None,
    react: ReactOpt = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            rich_help_panel="Output",
            help="Print flicker, strength hold, moving/static and drift; "
            "write <output>.report.png (input|output frames above a per-frame plot).",
        ),
    ] = False,
    resume: ResumeOpt = True,
    ray: RayOpt = None,
    workers: WorkersOpt = None,
    given: dict[str, Any] | None = None,
) -> None:
    """Dream a video, coherent in time, at the source's exact frame rate, with its audio."""
    with _user_errors():
        settings = _settings(preset, given or {}, set_, schedule, react)
        segments = settings.video.segments  # --segments, a preset or --set: the setting decides
        address = _cluster_address(ray, workers, segments)
        from .render import render_video

        progress = _Progress()
        try:
            if address is None:
                result = render_video(
                    input,
                    output,
                    settings,
                    command=_command_line(),
                    on_progress=progress,
                    on_note=_note,
                    resume=resume,
                    report=report,
                )
            else:
                from .cluster import connect
                from .cluster import render_video as render_on_cluster

                with connect(address, workers=workers, on_event=_note) as pool:
                    _note(f"Ray: {len(pool.workers)} worker(s) on {pool.nodes} node(s)")
                    result = render_on_cluster(
                        pool,
                        input,
                        output,
                        settings,
                        segments=segments,
                        command=_command_line(),
                        on_progress=progress,
                        on_note=lambda m: progress.write(f"note: {m}"),
                        resume=resume,
                        report=report,
                    )
        finally:
            progress.close()
        _warn(result)
        typer.echo(
            f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, {result.model}, "
            f"{result.seconds:.1f} s)"
        )
        if report:
            _print_metrics(result.metrics)
            from .render import report_path

            typer.echo(f"  report figure: {report_path(result.output)}")


def _cluster_address(ray: str | None, workers: int | None, segments: int) -> str | None:
    """The Ray address a command runs on (None = here, without Ray); ClusterError when Ray is missing."""
    if ray is None and workers is None and segments <= 1:
        return None
    from .cluster import require_ray

    require_ray()
    return ray or "local"


def _print_metrics(metrics: dict[str, float]) -> None:
    labels = {
        "flicker": "flicker (output / input, along the motion)",
        "strength": "dream strength (mean |out-in|, 0-255)",
        "strength_settled": "settled dream strength (second half)",
        "scratch_strength": "from-scratch strength (3 sampled frames)",
        "settled_over_scratch": "settled / from-scratch strength",
        "growth": "strength growth (last quarter / first)",
        "moving_over_static": "strength on moving / static pixels",
        "drift_per_100_frames": "brightness drift per 100 frames (0-255)",
    }
    for key, value in metrics.items():
        typer.echo(f"  {labels.get(key, key)}: {value}")


# --- analyze -------------------------------------------------------------------------------------


@app.command()
def analyze(
    input: Annotated[Path, typer.Argument(help="An audio or video file with sound.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Plot image (.png or .jpg).")],
    fps: Annotated[
        Optional[str], typer.Option(help="Frame rate to align features to (default: the video's, else 30).")
    ] = None,
    start: Annotated[Optional[float], typer.Option(min=0.0, help="Start this many seconds into the file.")] = None,
    duration: Annotated[Optional[float], typer.Option(min=0.001, help="Seconds to analyse.")] = None,
) -> None:
    """Plot loudness, onsets and band energies over time: what --react will drive the dream with."""
    with _user_errors():
        from .audio import analyze_file, plot_features
        from .encode import write_image
        from .probe import probe

        rate = parse_fps(fps) if fps else None  # checked before the file is read
        info = probe(input)
        rate = rate or info.fps or parse_fps(30)
        features = analyze_file(input, rate, start=start or 0.0, duration=duration)
        write_image(output, plot_features(features))
        typer.echo(f"wrote {output} ({features.duration:.1f} s at {rate} fps, {len(features.onset_frames)} onsets)")


# --- zoom ----------------------------------------------------------------------------------------


@app.command()
@with_settings("zoom")
def zoom(
    output: VideoOut,
    input: Annotated[Optional[Path], typer.Argument(help="Start image (PNG, JPEG, WebP, ...); or use --noise.")] = None,
    soundtrack: Annotated[
        Optional[Path],
        typer.Option(
            "--soundtrack",
            rich_help_panel="Music",
            dir_okay=False,
            help="Sound file to mux in, cut to the animation (also drives --react).",
        ),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    schedule: ScheduleOpt = None,
    react: ReactOpt = None,
    resume: ResumeOpt = True,
    segments: Annotated[int, typer.Option("--segments", min=1, hidden=True)] = 1,
    given: dict[str, Any] | None = None,
) -> None:
    """Infinite zoom: from an image (or --noise), each frame is the last one moved by the camera and dreamed again."""
    with _user_errors():
        if segments > 1:
            from .segments import check_splittable

            check_splittable("zoom")
        settings = _settings(preset, given or {}, set_, schedule, react)
        from .zoom import render_zoom

        progress = _Progress()
        try:
            result = render_zoom(
                input,
                output,
                settings,
                command=_command_line(),
                on_progress=progress,
                on_note=_note,
                resume=resume,
                soundtrack=soundtrack,
            )
        finally:
            progress.close()
        typer.echo(
            f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, {result.model}, "
            f"{result.seconds:.1f} s)"
        )
        if settings.zoom.loop and "seam" in result.metrics:
            typer.echo(
                f"  loop seam (mean |last - first|, 0-255): {result.metrics['seam']}; "
                f"median step between frames: {result.metrics.get('median_step')}"
            )


# --- layers (the gallery) -----------------------------------------------------------------------


@app.command("layers")
@with_settings("layers")
def layers_(
    input: Annotated[Path, typer.Argument(help="Image to dream on every layer (PNG, JPEG, WebP, ...).")],
    output: ImageOut,
    layer: Annotated[
        Optional[str],
        typer.Option(
            "--layer",
            rich_help_panel="Dream",
            help="With --channels: the layer (default: the model's deepest default).",
        ),
    ] = None,
    channels: Annotated[
        Optional[int],
        typer.Option(
            "--channels",
            min=1,
            max=256,
            rich_help_panel="Dream",
            help="Show N channels of one layer, spread over its width, instead of one tile per layer.",
        ),
    ] = None,
    preset: Annotated[
        Optional[str],
        typer.Option("--preset", "-p", rich_help_panel="Dream", help="Preset for the tiles' sizes and steps."),
    ] = "fast-preview",
    set_: SetOpt = None,
    given: dict[str, Any] | None = None,
) -> None:
    """A contact sheet: the image dreamed on each layer (or N channels of one), each tile labelled with
    the spec to pass to --layers."""
    with _user_errors():
        settings = _settings(preset, given or {}, set_)
        from .gallery import render_layers

        progress = _Progress(unit="tile")
        try:
            result = render_layers(
                input, output, settings, layer=layer, channels=channels, on_progress=progress, on_note=_note
            )
        finally:
            progress.close()
        cols, rows = result.grid
        typer.echo(
            f"wrote {result.output} ({len(result.labels)} tiles of {result.tile[0]}x{result.tile[1]} in "
            f"{cols}x{rows}, {result.model}, {result.seconds:.1f} s)"
        )


# --- batch ---------------------------------------------------------------------------------------


@app.command()
def batch(
    manifest: Annotated[
        Path, typer.Argument(help="Batch manifest (.toml): defaults, then a table per job (see samples/night.toml).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would run, with estimated frames and time; render nothing.")
    ] = False,
    ray: RayOpt = None,
    workers: WorkersOpt = None,
    segments: SegmentsOpt = 1,
) -> None:
    """Render a manifest of jobs: finished ones are skipped, an interrupted one resumes, a failed one does not
    stop the rest."""
    with _user_errors():
        from .batch import format_summary, load_manifest, run_batch

        loaded = load_manifest(manifest)
        # A video job's own `segments` setting wins over --segments; either > 1 needs Ray.
        split = max([segments, *(j.settings.video.segments for j in loaded.jobs if j.kind == "video")])
        address = None if dry_run else _cluster_address(ray, workers, split)
        progress = _Progress(desc="cluster" if address else "dreaming")

        def event(line: str) -> None:
            progress.close()  # each job gets its own bar; a line ends the current one
            progress.bar = None
            typer.echo(line)

        try:
            if address is None:
                summary = run_batch(
                    loaded, dry_run=dry_run, on_event=event, on_progress=progress, command=_command_line()
                )
            else:
                from .cluster import batch_executor, connect

                with connect(address, workers=workers, on_event=progress.write) as pool:
                    progress.write(f"Ray: {len(pool.workers)} worker(s) on {pool.nodes} node(s)")
                    summary = run_batch(
                        loaded,
                        on_event=progress.write,
                        on_progress=progress,
                        command=_command_line(),
                        executor=batch_executor(pool, segments),
                    )
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

    for p in list_presets(on_skip=_note):  # a bad file in the user's folder is a note, not the end of the list
        typer.echo(f"{p.name:<18} {p.description}")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name or .toml path.")]) -> None:
    """Show a preset's fully resolved settings (TOML)."""
    with _user_errors():
        from .presets import load_preset, read_preset

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


class _ModelsGroup(typer.core.TyperGroup):
    """`dreamvideo models NAME` is `dreamvideo models show NAME`: a first word that is no subcommand is a model."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


models_app = typer.Typer(
    cls=_ModelsGroup,
    invoke_without_command=True,
    help="Each model, its default layers, and where its weights come from right now; "
    "`dreamvideo models NAME` shows one.",
)
app.add_typer(models_app, name="models")


def _print_models(names: list[str], list_layers: bool, details: bool = False) -> None:
    from .model import find_weights, get_spec

    for n in names:
        spec = get_spec(n)
        if list_layers:
            typer.echo(f"{spec.name}: " + " ".join(spec.layers))
            continue
        src = find_weights(spec, None)
        typer.echo(f"{spec.name:<20} {spec.description}")
        typer.echo(f"{'':<20} default layers: {','.join(spec.default_layers)}")
        typer.echo(f"{'':<20} weights: {src.kind} - {src.detail}")
        if details:
            _print_objectives(spec)


@models_app.callback()
def models_list(
    ctx: typer.Context,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="List the layers one can dream on.")] = False,
    retry_download: Annotated[
        bool,
        typer.Option(
            "--retry-download", help="Forget recorded failed downloads and try InceptionV3's download again now."
        ),
    ] = False,
    classes: Annotated[bool, typer.Option("--classes", help="List the ImageNet classes for --dream-class.")] = False,
) -> None:
    """Each model, its default layers, and where its weights come from right now.

    `dreamvideo models NAME` shows one; `dreamvideo models install MODEL FILE` installs weights.
    """
    if ctx.invoked_subcommand is not None:
        return
    with _user_errors():
        from .model import DEFAULT_MODEL, download_weights, get_spec, import_tensorflow, model_names, retry_downloads

        if classes:
            _print_classes()
            return
        if retry_download:
            cleared = retry_downloads()
            spec = get_spec(DEFAULT_MODEL)
            typer.echo(f"forgot failed downloads of {', '.join(cleared)}" if cleared else "no failed download recorded")
            import_tensorflow()
            download_weights(spec)  # one-line ModelError (recorded again) when still offline
            typer.echo(f"downloaded {spec.name} weights")
            return
        _print_models(model_names(), list_layers)


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A model, to see its details.")],
    list_layers: Annotated[bool, typer.Option("--list-layers", help="List the layers one can dream on.")] = False,
    classes: Annotated[bool, typer.Option("--classes", help="List the ImageNet classes for --dream-class.")] = False,
) -> None:
    """One model's details, and the objectives it supports (layers, channels per layer, classes)."""
    with _user_errors():
        if classes:
            _print_classes()
            return
        parent = ctx.parent.params if ctx.parent is not None else {}
        _print_models([name], list_layers or bool(parent.get("list_layers")), details=True)


def _print_classes() -> None:
    from .classes import class_names

    for index, names_of in enumerate(class_names()):
        typer.echo(f"{index:>3} {names_of[0]}" + (f" ({', '.join(names_of[1:])})" if names_of[1:] else ""))


def _print_objectives(spec: Any) -> None:
    from .errors import ModelError
    from .model import classifier_layer, get_spec
    from .objective import class_models, layer_channels

    widths = layer_channels(spec)
    try:
        has = classifier_layer(spec) is not None
    except ModelError:  # e.g. DREAMVIDEO_WEIGHTS names a missing file: the weights line says so
        has = False
    if has:
        cls = "yes, --dream-class NAME or 0..999 (see `dreamvideo models --classes`)"
    elif spec.class_layer:  # the classifier comes with the full weights only
        cls = f"only with its full weights (--weights FILE, e.g. Keras' {spec.full_file}); not with those here"
    else:
        able = [n + (" with its full weights" if get_spec(n).classifier_in else "") for n in class_models()]
        cls = "no (no classifier: use " + ", ".join(able) + ")"
    typer.echo(
        f"{'':<20} objectives: layers (--layers NAME), channels (NAME:CHANNEL), weights "
        f"(NAME=WEIGHT), guide images (--guide)"
    )
    typer.echo(f"{'':<20} classes: {cls}")
    for layer_name, width in widths.items():
        typer.echo(f"{'':<20}   {layer_name:<14} {width:>5} channels (0..{width - 1})")


@models_app.command("install")
def models_install(
    model: Annotated[str, typer.Argument(help="The model the weights are for, e.g. inception_v3.")],
    file: Annotated[Path, typer.Argument(help="A no-top Keras weights file (.h5 or .weights.h5) for that model.")],
) -> None:
    """Check that FILE fits MODEL (by loading it) and install it where dreamvideo finds it, offline, with no flag."""
    with _user_errors():
        from .model import install_weights

        target = install_weights(model, file)
        typer.echo(f"installed {file} as {model} weights: {target}")


@app.command()
def doctor(
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also import TensorFlow and run a convolution where there is no GPU "
            "(a few seconds; with a GPU that always happens).",
        ),
    ] = False,
) -> None:
    """Check ffmpeg, TensorFlow and each GPU (name, memory, a convolution), each model's weights, the caches."""
    from .doctor import run_checks

    problems = 0
    for check in run_checks(deep):
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
