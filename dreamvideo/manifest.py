"""Batch manifests: the TOML schema of a night's jobs, and its validation.

A manifest is data, parsed with tomllib and never evaluated::

    description = "Saturday night"            # optional

    [defaults]                                # optional: applies to every job
    preset = "fast-preview"                   # a preset name or a .toml path (relative to this file)
    max_side = 480                            # flat settings keys ...
    [defaults.encode]                         # ... or sectioned tables, as in presets
    crf = 20

    [[job]]
    name = "beach"                            # optional; default: the output's stem
    kind = "video"                            # "image", "video" or "zoom" (JOB_KINDS)
    input = "clips/beach.mp4"                 # relative paths resolve against this file's folder
    output = "out/beach.mp4"                  # a folder/ (trailing slash) for PNG frames
    preset = "classic"                        # optional; replaces the defaults' preset
    steps = 12                                # settings: flat keys, sectioned tables ([job.video]),
    overrides = { blend = 0.2 }               # or an `overrides` table (applied last)
    audio = false                             # a setting like any other: drop the source's sound

    [[job]]
    kind = "zoom"
    input = "butterfly.jpg"
    output = "out/dive.mp4"
    soundtrack = "music/track.mp3"            # zoom only: a sound track (and audio reactions)

Each job's settings resolve as: defaults < preset (the job's, else the defaults') < the
[defaults] settings < the job's settings. The whole manifest is checked before anything renders:
kinds, missing and unknown keys, bad values (config.merge), unknown models and layers, duplicate
outputs (also through symlinked folders), an output that is or holds any job's input (any
spelling, symlink or hard link); an error names the file, the job (index and name) and the key.
A missing input file is not a manifest error (it may be on a drive mounted later): that job
alone fails.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import FLAT_INDEX, SECTIONS, Settings, merge
from .encode import IMAGE_SUFFIXES as IMAGE_EXTS  # the encoder's own lists
from .encode import VIDEO_KINDS, describe_kinds
from .encode import VIDEO_SUFFIXES as VIDEO_EXTS
from .encode import output_kind as path_output_kind
from .errors import ConfigError, ModelError, OutputError
from .presets import load_preset, read_toml
from .resume import work_dir_for
from .toolkit import IMAGE_KINDS, OutputTarget, settings_path

JOB_KINDS = ("image", "video", "zoom")  # what a [[job]] renders (not encode.OUTPUT_KINDS, what a file is)
JOB_KEYS = ("name", "kind", "input", "output", "preset", "soundtrack", "overrides")  # non-setting keys of a [[job]]
DEFAULTS_KEYS = ("preset",)  # non-setting keys of [defaults]
TOP_KEYS = ("description", "defaults", "job")  # the manifest's top level
SETTING_KEYS = (*SECTIONS, *FLAT_INDEX, "schedule", "react")  # keys that are settings, in any table

__all__ = ["DEFAULTS_KEYS", "JOB_KEYS", "JOB_KINDS", "Job", "Manifest", "SETTING_KEYS", "TOP_KEYS", "load_manifest"]


# --- the manifest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One validated [[job]] of a manifest."""

    index: int  # 1-based position in the manifest, as in error messages and log names
    name: str  # the job's name (default: the output's stem); unique within the manifest
    kind: str  # "image", "video" or "zoom" (JOB_KINDS)
    input: Path | None  # absolute input path; None only for a zoom from noise (zoom.noise = true)
    output: Path  # absolute output path (a folder for PNG frames when `folder` is true)
    folder: bool  # True when the output is a PNG-frames folder (written with a trailing '/')
    soundtrack: Path | None  # zoom only: absolute path of a sound track; None = none
    preset: str | None  # the preset the settings start from (the job's, else the defaults'); None = defaults
    settings: Settings  # fully resolved settings
    overrides: dict[str, Any] = field(default_factory=dict)  # the job's own settings keys, as written

    output_kind: str = ""  # the output's kind (encode.OUTPUT_KINDS), resolved once at load

    @property
    def target(self) -> OutputTarget:
        """The output with its kind, as the renderers take it (a "run.6/" folder stays a folder)."""
        return OutputTarget(self.output, self.output_kind or path_output_kind(self.output))

    @property
    def inputs(self) -> tuple[Path, ...]:
        """Every file the job reads: its input and its sound track."""
        return tuple(p for p in (self.input, self.soundtrack) if p is not None)

    @property
    def label(self) -> str:
        """'job 2 ("beach")', the way errors and events name a job."""
        return f'job {self.index} ("{self.name}")'


@dataclass(frozen=True)
class Manifest:
    """A validated batch manifest."""

    path: Path  # the manifest file, absolute
    description: str  # optional top-level description ("" when absent)
    jobs: tuple[Job, ...]  # in file order
    log_dir: Path  # where the per-job logs go: <manifest-stem>.logs/ beside the manifest

    def log_path(self, job: Job) -> Path:
        """The job's log file: NN-name.log (name reduced to safe characters)."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", job.name).strip("-.") or "job"
        return self.log_dir / f"{job.index:02d}-{slug[:60]}.log"


def _unknown(where: str, key: str, valid: tuple[str, ...] | list[str], fallback: str) -> ConfigError:
    hint = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.75)
    tail = f" (did you mean {hint[0]!r}?)" if hint else f"; {fallback}"
    return ConfigError(f"{where}: unknown key {key!r}{tail}")


def _split(where: str, table: Mapping[str, Any], own: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(own keys, settings keys) of a table; ConfigError for a key that is neither."""
    mine: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in own:
            mine[key] = value
        elif key == "audio" and isinstance(value, str):
            raise ConfigError(
                f"{where}: audio = {value!r}: audio is the encode setting (true/false); a zoom job's "
                f"sound track is soundtrack = {value!r} (a video job keeps its source's sound)"
            )
        elif key in SETTING_KEYS:
            settings[key] = value
        else:
            raise _unknown(
                where,
                key,
                (*own, *SETTING_KEYS),
                f"use {', '.join(own)} or a setting (see `dreamvideo presets show default`)",
            )
    return mine, settings


def _string(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return Path(os.path.abspath(p if p.is_absolute() else base / p))


def _preset_ref(base: Path, value: str) -> str:
    """A preset name stays a name; a path (.toml or with a slash) resolves against the manifest's folder."""
    if value.endswith(".toml") or "/" in value or os.sep in value:
        return str(_resolve(base, value))
    return value


def _default_name(output: str) -> str:
    """A job's name when it has none: the output's stem (a frames folder's whole name: "run.6/" -> run.6)."""
    p = Path(output.rstrip("/" + os.sep) or "output")
    return p.name if output.endswith(("/", os.sep)) or not p.suffix else p.stem


def _kind_of_output(output: Path, text: str) -> str | None:
    """encode.output_kind of the resolved output, keeping the user's trailing '/' (a folder even with a
    dot, "run.6/"); None when the kind is unknown (the caller's message lists what is)."""
    try:
        return path_output_kind(f"{output}{os.sep}" if text.endswith(("/", os.sep)) else output)
    except OutputError:
        return None


PATH_SETTINGS = ("weights", "guide", "mask")  # settings that name a file


def _check_model(where: str, settings: Settings) -> None:
    """Unknown model or layer names are manifest errors (no model is built here)."""
    from .model import get_spec
    from .objective import plan

    d = settings.dream
    if d.model is None:
        return
    try:
        spec = get_spec(d.model)
        if spec.layers:
            plan(spec, d.layers, d.dream_class, d.weights)  # layer names (mixed4:97), a classifier for dream_class
    except ModelError as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_encode(where: str, settings: Settings) -> None:
    from .encode import X264_PRESETS

    if settings.encode.encoder_preset not in X264_PRESETS:
        raise ConfigError(
            f"{where}: encoder_preset {settings.encode.encoder_preset!r} is unknown: "
            f"use one of {', '.join(X264_PRESETS)}"
        )


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest; ConfigError (one line naming file, job and key) on any problem.

    Args:
        path: the manifest TOML file; relative inputs, outputs and preset paths in it are taken from
            its folder.

    Returns:
        Manifest: the absolute path, the description, the jobs in file order (each with its settings
        resolved: defaults < preset < job keys) and the folder for the per-job logs.

    Raises:
        ConfigError: the file cannot be read or is not valid TOML, or a key, value, preset or job is
            invalid (an unknown key or kind, a missing kind, input or output key, an output of the wrong kind
            or equal to its input, two jobs writing one output).
    """
    shown = str(path)  # errors name the file as the user gave it
    path = Path(os.path.abspath(Path(path).expanduser()))
    data = read_toml(path)
    base = path.parent
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(shown, key, TOP_KEYS, "a manifest has [defaults] and [[job]] tables (and a description)")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{shown}: description must be a string")

    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{shown}: defaults must be a table: write [defaults]")
    where = f"{shown}: [defaults]"
    own, default_settings = _split(where, defaults, DEFAULTS_KEYS)
    default_preset = _preset_ref(base, _string(where, "preset", own["preset"])) if "preset" in own else None
    try:
        merge(load_preset(default_preset), default_settings, source=where)
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None

    raw_jobs = data.get("job")
    if raw_jobs is None:
        raise ConfigError(f"{shown}: no jobs: add [[job]] tables with kind, input and output")
    if isinstance(raw_jobs, dict):
        raise ConfigError(f"{shown}: write each job as [[job]] (double brackets), not [job]")
    if not isinstance(raw_jobs, list):
        raise ConfigError(
            f"{shown}: job = {raw_jobs!r} is not a job: write each job as a [[job]] table with kind, input and output"
        )
    if not raw_jobs:
        raise ConfigError(f"{shown}: no jobs: add [[job]] tables with kind, input and output")

    explicit = [t.get("name") for t in raw_jobs if isinstance(t, dict) and isinstance(t.get("name"), str)]
    jobs: list[Job] = []
    outputs: dict[str, Job] = {}
    sidecars: dict[str, Job] = {}
    names: dict[str, Job] = {}
    for index, table in enumerate(raw_jobs, start=1):
        where = f"{shown}: job {index}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table of keys")
        if "name" in table:
            where = f'{where} ("{_string(where, "name", table["name"])}")'
        elif isinstance(table.get("output"), str) and table["output"].strip():
            where = f'{where} ("{_default_name(table["output"])}")'
        job = _load_job(where, index, table, base, default_preset, default_settings)
        if "name" not in table and (job.name in names or job.name in explicit):
            job = dataclasses.replace(job, name=f"{job.name}-{index}")  # two outputs with one stem
        where = f"{shown}: {job.label}"
        # Outputs compared where they really land: through symlinked folders, and '..' resolved.
        for other_map, key, shown_key, what in (
            (outputs, os.path.realpath(job.output), str(job.output), "output"),
            (sidecars, os.path.realpath(settings_path(job.target)), str(settings_path(job.target)), "settings file"),
            (names, job.name, job.name, "name"),
        ):
            other = other_map.get(key)
            if other is not None:
                raise ConfigError(f"{where}: {what} {shown_key!r} is also {other.label}'s: each job needs its own")
            other_map[key] = job
        jobs.append(job)
    _check_outputs_spare_inputs(shown, jobs)
    return Manifest(
        path=path, description=description.strip(), jobs=tuple(jobs), log_dir=path.parent / f"{path.stem}.logs"
    )


def _load_job(
    where: str,
    index: int,
    table: dict[str, Any],
    base: Path,
    default_preset: str | None,
    default_settings: dict[str, Any],
) -> Job:
    own, job_settings = _split(where, table, JOB_KEYS)
    overrides = own.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: overrides must be a table of settings, e.g. overrides = {{ steps = 4 }}")
    _, extra = _split(f"{where}: overrides", overrides, ())
    for missing in ("kind", "output"):
        if missing not in own:
            raise ConfigError(f"{where}: missing key {missing!r}: each job needs kind, input and output")
    kind = _string(where, "kind", own["kind"])
    if kind not in JOB_KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is unknown: use one of {', '.join(JOB_KINDS)}")
    out_text = _string(where, "output", own["output"])
    output = _resolve(base, out_text)
    kind_of_output = _kind_of_output(output, out_text)
    folder = kind_of_output == "frames"
    name = own["name"] if "name" in own else _default_name(out_text)

    preset = _preset_ref(base, _string(where, "preset", own["preset"])) if "preset" in own else default_preset
    try:
        settings = load_preset(preset)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    settings = merge(settings, default_settings, source=f"{where}: [defaults]")
    settings = merge(settings, job_settings, source=where)
    settings = merge(settings, extra, source=f"{where}: overrides")
    # Files named by settings (weights, guide, mask) resolve against the manifest's folder, like inputs.
    files = {
        k: str(_resolve(base, settings.get(k)))
        for k in PATH_SETTINGS
        if isinstance(settings.get(k), str) and not Path(settings.get(k)).expanduser().is_absolute()
    }
    if files:
        settings = merge(settings, files, source=where)
    _check_model(where, settings)
    _check_encode(where, settings)
    if kind != "video" and settings.video.segments > 1:
        why = " (each frame is dreamed from the one before)" if kind == "zoom" else ""
        raise ConfigError(
            f"{where}: a {kind} job cannot be split into segments{why}: drop segments from it "
            "(jobs already run in parallel across a cluster)"
        )

    if kind == "image" and kind_of_output != "image":
        raise ConfigError(f"{where}: output {out_text!r} is not an image: use {describe_kinds(IMAGE_KINDS)}")
    if kind != "image" and kind_of_output not in VIDEO_KINDS:
        raise ConfigError(f"{where}: output {out_text!r} is not a video: use {describe_kinds(VIDEO_KINDS)}")

    input_path: Path | None = None
    if "input" in own:
        in_text = _string(where, "input", own["input"])
        input_path = _resolve(base, in_text)
        in_suffix = input_path.suffix.lower()
        if kind == "video" and in_suffix in IMAGE_EXTS:
            raise ConfigError(
                f"{where}: input {in_text!r} is an image: a video job needs a video "
                '(use kind = "zoom" to animate a still)'
            )
        if kind in ("image", "zoom") and in_suffix in VIDEO_EXTS and in_suffix != ".gif":
            raise ConfigError(
                f'{where}: input {in_text!r} is a video: a {kind} job needs an image (use kind = "video")'
            )
        if input_path == output:
            raise ConfigError(f"{where}: output {out_text!r} is the input: choose another output name")
        if kind == "zoom" and settings.zoom.noise:
            raise ConfigError(
                f"{where}: a zoom starts from an input image or from noise, not both: drop input or noise = true"
            )
    elif not (kind == "zoom" and settings.zoom.noise):
        raise ConfigError(f"{where}: missing key 'input'" + (" (or set noise = true)" if kind == "zoom" else ""))

    soundtrack: Path | None = None
    if "soundtrack" in own:
        if kind != "zoom":
            raise ConfigError(
                f"{where}: soundtrack is for zoom jobs only: a {kind} job keeps its source's sound "
                "(audio = false drops it)"
            )
        soundtrack = _resolve(base, _string(where, "soundtrack", own["soundtrack"]))
        if soundtrack == output:
            raise ConfigError(f"{where}: output {out_text!r} is the sound track: choose another output name")

    assert kind_of_output is not None
    return Job(
        index=index,
        name=name,
        kind=kind,
        input=input_path,
        output=output,
        folder=folder,
        soundtrack=soundtrack,
        preset=preset,
        settings=settings,
        overrides={**job_settings, **extra},
        output_kind=kind_of_output,
    )


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(real path, (device, inode) or None when absent): two spellings, a symlink or a hard link of
    one file give the same real path or the same inode."""
    try:
        st = os.stat(path)
        inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return os.path.realpath(path), inode


def _check_outputs_spare_inputs(shown: str, jobs: list[Job]) -> None:
    """Refuse the whole manifest when anything a job writes (its output, the settings JSON, the work
    folder) is, or holds, any job's input: a batch must never destroy what a later job reads."""
    inputs = [(job, path, *_identity(path)) for job in jobs for path in job.inputs]
    for job in jobs:
        written = [(job.output, job.folder), (settings_path(job.target), False), (work_dir_for(job.output), True)]
        for out, is_folder in written:
            real, inode = _identity(out)
            for owner, path, in_real, in_inode in inputs:
                hit = real == in_real or (inode is not None and inode == in_inode)
                hit = hit or (is_folder and in_real.startswith(real.rstrip(os.sep) + os.sep))
                if not hit:
                    continue
                whose = "its own" if owner is job else f"{owner.label}'s"
                raise ConfigError(
                    f"{shown}: {job.label}: output {str(out)!r} would overwrite {whose} input "
                    f"{str(path)!r}: choose another output name (nothing was rendered)"
                )
