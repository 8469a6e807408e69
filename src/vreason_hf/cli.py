# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The ``vreason`` command: ``demo``, ``run``, ``eval``, ``plot``, ``export-recipe``, ``app`` and ``export-space``.

Errors in user input (missing files, bad knobs, unknown dataset fields, conflicting options) print one line,
``Error: ...``, on stderr and exit with status 1 (2 for command-line syntax errors), without a traceback. Set
``VREASON_DEBUG=1`` to get the traceback instead.
"""

import contextlib
import functools
import inspect
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import DEFAULT_MODEL as APP_MODEL  # a constant: `vreason_hf.app` imports torch and Gradio lazily
from .assets import NAMED_MODELS
from .configuration_vreason import VReasonConfig
from .knobs import knob_fields

logger = logging.getLogger(__name__)

__all__ = ["app", "main"]

# User-input errors reported as one line; FileExistsError / NotADirectoryError come from `export-recipe`'s folder check.
_USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    ConnectionError,
    ValueError,
    TypeError,
    ImportError,
)

_NAMED_MODELS_HELP = (
    "\b\nNamed models (--model NAME; no Hub needed, saved in $VREASON_HF_CACHE or ~/.cache/vreason-hf):\n"
    + "\n".join(f"  {named.name:<16} {named.description}" for named in NAMED_MODELS.values())
)

app = typer.Typer(
    name="vreason",
    help=(
        "V-Reason (Video Reasoning without Training) for Hugging Face video LMMs: answer, compare with plain "
        "decoding, evaluate on Video-R1 files, plot entropy traces, export the Hub recipe."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog=_NAMED_MODELS_HELP,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn user-input errors into one ``Error: ...`` line on stderr and exit status 1."""
    try:
        yield
    except _USER_ERRORS as error:
        if os.environ.get("VREASON_DEBUG"):
            raise
        lines = str(error).strip().splitlines()
        message = lines[0] if lines else type(error).__name__
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(1) from None


def _knob_parameters() -> list[inspect.Parameter]:
    """One option per knob, defaulting to `VReasonConfig`'s default; booleans get ``--x/--no-x``.

    Read from the config's field declarations (help text included) without importing it, see `vreason_hf.knobs`.
    """
    params = []
    for knob in knob_fields():
        name, default = knob.name, knob.default
        flag = f"--{name.replace('_', '-')}"
        help_text = f"{knob.help.replace('*', '')} [config default: {default}]"
        if isinstance(default, bool):
            option = typer.Option(f"{flag}/--no-{name.replace('_', '-')}", help=help_text, show_default=False)
        else:
            option = typer.Option(flag, help=help_text, show_default=False)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[type(default), option],
            )
        )
    return params


def _with_knob_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per `VReasonConfig` knob to a command.

    The command receives them as ``knobs``: only the values that differ from the config's defaults (a dict to pass
    to `VReasonConfig`), so a command can combine them with settings of its own.
    """
    defaults = {knob.name: knob.default for knob in knob_fields()}
    names = list(defaults)
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != "knobs"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names if name in kwargs}
        return func(*args, knobs={k: v for k, v in values.items() if v != defaults[k]}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + _knob_parameters())
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
    return wrapper


def _frame_sampling(
    num_frames: int | None, fps: float | None, max_frames: int | None
) -> tuple[int | None, float | None, int | None]:
    from .inputs import frame_sampling

    if num_frames is not None and fps is not None:
        raise ValueError("`--num-frames` and `--fps` are mutually exclusive: pass only one of them.")
    return frame_sampling(num_frames, fps, max_frames)


def _load_model(
    model_id: str,
    *,
    device: str,
    dtype: str,
    device_map: str | None,
    trust_remote_code: bool,
    progress: bool = True,
) -> tuple[Any, Any]:
    """Load a model with its processor (see `vreason_hf.loading.load_model`: named models, offline check, bar)."""
    from .loading import load_model

    return load_model(
        model_id,
        device=device,
        dtype=dtype,
        device_map=device_map,
        trust_remote_code=trust_remote_code,
        progress=progress,
    )


def _label(mode: str) -> str:
    from .compare import LABELS

    return LABELS[mode]


def _print_answers(results: dict[str, Any]) -> None:
    from .compare import comparison_table, memory_note, printable

    for mode, result in results.items():
        typer.echo(f"\n[{_label(mode)}]\n{printable(result.text)}")
    typer.echo("")
    typer.echo(comparison_table(results))
    typer.echo(
        "(post-peak entropy = mean entropy, in nats, of the tokens after the peak of the entropy's moving average; "
        f"{memory_note(next(iter(results.values())).memory_source)})"
    )


def _plot(results: dict[str, Any], out: Path, dataset: str, title: str) -> None:
    from .compare import trace_records
    from .eval.plots import plot_entropy_traces

    plot_entropy_traces(trace_records(results, dataset), out, min_samples=1, title=title)
    typer.echo(f"Entropy plot: {out}")


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is when a record is emitted."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(verbose: bool) -> None:
    package = logging.getLogger("vreason_hf")
    if not any(isinstance(handler, _StderrHandler) for handler in package.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        from transformers.utils import logging as hf_logging

        if verbose:
            hf_logging.set_verbosity_warning()
            hf_logging.enable_progress_bar()
        else:
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


# Shared option types -------------------------------------------------------------------------------

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help=f"Local folder, Hub id, or a named model ({', '.join(NAMED_MODELS)}; see `vreason --help`).",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(help='Device: "auto" (the launcher\'s GPU, else cuda, else cpu), "cpu", "cuda:0", ...'),
]
DtypeOption = Annotated[
    str, typer.Option(help='Weights dtype: "auto" (the checkpoint\'s), float32, bfloat16, float16.')
]
DeviceMapOption = Annotated[
    str | None,
    typer.Option(
        help='Passed to from_pretrained (e.g. "auto" to spread a model too large for one GPU); overrides --device.'
    ),
]
TrustOption = Annotated[bool, typer.Option(help="Allow custom modelling code from the Hub repo.")]
NumFramesOption = Annotated[
    int | None, typer.Option(help="Sample this many frames uniformly (exclusive with --fps).")
]
FpsOption = Annotated[
    float | None,
    typer.Option(
        help="Sample frames at this rate (default: 2 fps, at most 16 frames, when --num-frames is not given)."
    ),
]
MaxFramesOption = Annotated[
    int | None,
    typer.Option(help="At most this many frames (default: 16 with the default 2 fps sampling, as Video-R1)."),
]
BackendOption = Annotated[str, typer.Option(help='Video decoder: "auto", "decord" or "pyav".')]


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Debug logging, transformers' warnings and progress bars (off by default: one bar of our own).",
        ),
    ] = False,
) -> None:
    _configure_logging(verbose)


# --------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------


@app.command()
def demo(
    max_new_tokens: Annotated[int, typer.Option(help="At most this many new tokens per reply.")] = 96,
    out_dir: Annotated[
        Path,
        typer.Option(help="Folder for the entropy plots, a copy of the real clip and a small Video-R1 file."),
    ] = Path("vreason-demo"),
) -> None:
    """Offline demo on the CPU: plain decoding vs V-Reason on a real model, the video path, what to try next."""
    with _user_errors():
        from .demo import run_demo

        def load(name: str) -> tuple[Any, Any]:
            return _load_model(name, device="cpu", dtype="float32", device_map=None, trust_remote_code=False)

        run_demo(out_dir, max_new_tokens, typer.echo, load)


# --------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------


@app.command()
@_with_knob_options
def run(
    model: ModelOption,
    question: Annotated[str, typer.Option("--question", "-q", help="The question.")],
    video: Annotated[
        Path | None,
        typer.Option(help="Video file (leave out for a text-only question; then --controller-scope prompt)."),
    ] = None,
    compare: Annotated[
        bool, typer.Option(help="Also answer with plain decoding and print both side by side.")
    ] = False,
    plot: Annotated[Path | None, typer.Option(help="Save the entropy-trace plot (PNG) here.")] = None,
    num_frames: NumFramesOption = None,
    fps: FpsOption = None,
    max_frames: MaxFramesOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="At most this many new tokens.")] = 1024,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    trust_remote_code: TrustOption = False,
    video_backend: BackendOption = "auto",
    knobs: dict[str, Any] | None = None,
) -> None:
    """Answer one question about a video with V-Reason (and with plain decoding too, with --compare)."""
    with _user_errors():
        num_frames, fps, max_frames = _frame_sampling(num_frames, fps, max_frames)
        config = VReasonConfig(**(knobs or {}))
        if video is not None and not video.is_file():
            raise FileNotFoundError(f"Video file not found: '{video}'.")
        if video is None and config.controller_scope != "prompt":
            raise ValueError(
                "Without `--video` there are no video tokens to control: pass `--controller-scope prompt`."
            )
        if plot is not None:
            import matplotlib  # noqa: F401  (fail before the generation, not after)

        from .eval.generation import generate_answer, warm_up
        from .inputs import build_inputs, is_multimodal
        from .video import load_video

        model_obj, processor = _load_model(
            model, device=device, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code
        )
        typer.echo(f"Model: {model} ({type(model_obj).__name__}, {model_obj.device}, {model_obj.dtype})")
        if model in NAMED_MODELS and NAMED_MODELS[model].random and not Path(model).is_dir():
            typer.echo(f"({model} has random weights: its words are meaningless; it shows the video path.)")
        if video is not None:
            if not is_multimodal(processor):
                raise ValueError(f"{model!r} is a text-only model: it cannot take `--video`.")
            frames, metadata = load_video(
                video, num_frames=num_frames, fps=fps, max_frames=max_frames, backend=video_backend
            )
            inputs = build_inputs(processor, question, video=frames, video_metadata=metadata)
            video_id = getattr(model_obj.config, "video_token_id", None)
            n_video = int((inputs["input_ids"] == video_id).sum()) if video_id is not None else 0
            typer.echo(
                f"Video: {video.name}, {frames.shape[0]} of {metadata.total_num_frames} frames "
                f"({metadata.fps:.1f} fps native) -> {n_video} video tokens"
            )
        else:
            inputs = build_inputs(processor, question)
        mode = "lite" if config.lite else "vreason"
        modes = ("base", mode) if compare else (mode,)
        generation = {"max_new_tokens": max_new_tokens, "do_sample": False}
        warm_up(model_obj, processor, inputs, modes=modes, vreason_config=config, generate_kwargs=generation)
        results = {
            m: generate_answer(
                model_obj, processor, inputs, mode=m, vreason_config=config, generate_kwargs=generation
            )
            for m in modes
        }
        _print_answers(results)
        if plot is not None:
            _plot(results, plot, "run", f"{model}: {'base vs ' if compare else ''}{_label(mode)}")


# --------------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------------


def _dataset_name(path: Path) -> str:
    stem = path.stem
    return stem[len("eval_") :] if stem.startswith("eval_") and len(stem) > len("eval_") else stem


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
    if match is None:
        raise ValueError(f"`--shard` must look like INDEX/COUNT (e.g. 0/4), got {shard!r}.")
    return int(match.group(1)), int(match.group(2))


def _parse_modes(modes: str | None, compare: bool, lite: bool, preset: str | None) -> tuple[str, ...]:
    from .eval.generation import MODES

    if modes is None:
        if preset == "paper":
            from .eval.presets import PAPER_SETTINGS

            return PAPER_SETTINGS["modes"]
        mode = "lite" if lite else "vreason"
        return ("base", mode) if compare else (mode,)
    if compare or lite:
        option = "--compare" if compare else "--lite"
        raise ValueError(f"`--modes` and `{option}` both choose the modes: pass only `--modes`.")
    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    unknown = [m for m in chosen if m not in MODES]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise ValueError(
            f"`--modes` must be distinct modes among {', '.join(MODES)} separated by commas, got {modes!r}."
        )
    return chosen


@app.command("eval")
@_with_knob_options
def eval_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Results JSONL (summary .json/.md written next to it).")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Hub id or local folder of the model.")
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE", help="Video-R1 evaluation file (.json or .jsonl); repeat for several datasets."
        ),
    ] = None,
    video_root: Annotated[
        Path | None,
        typer.Option(help="Folder the `path` fields are relative to (default: the current directory)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="\"paper\": the paper's six benchmarks (Video-R1's eval_*.json in --data-dir) with its settings "
            "(modes base, vreason, lite; greedy, 1024 new tokens; 2 fps, at most 16 frames), then our numbers beside "
            "the paper's. Options given explicitly override its settings."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="With --preset paper: the folder of Video-R1's evaluation JSONs (default: VIDEO_ROOT/Evaluation)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples of each file.")] = None,
    compare: Annotated[
        bool, typer.Option(help="Evaluate plain decoding too (modes base and vreason).")
    ] = False,
    modes: Annotated[
        str | None,
        typer.Option(help="Comma-separated modes among base, vreason, lite (instead of --compare / --lite)."),
    ] = None,
    dataset_name: Annotated[
        str | None,
        typer.Option(
            help="Dataset name in the results (default: file name without `eval_`); one --data only."
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Decode this many samples together (left-padded; each keeps its own V-Reason state, so the "
            "answers do not change, only the speed)."
        ),
    ] = 1,
    num_frames: NumFramesOption = None,
    fps: FpsOption = None,
    max_frames: MaxFramesOption = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="At most this many new tokens (default: 1024, the paper's).")
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    trust_remote_code: TrustOption = False,
    video_backend: BackendOption = "auto",
    shard: Annotated[
        str | None,
        typer.Option(help="INDEX/COUNT: run one shard by hand (default: from accelerate launch / torchrun)."),
    ] = None,
    merge: Annotated[
        bool,
        typer.Option("--merge", help="Only merge RESULTS.rank*.jsonl into --output and write the summary."),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Run again the samples recorded as failed (e.g. a corrupt video since replaced); "
            "by default a rerun skips them.",
        ),
    ] = False,
    video_r1_json: Annotated[
        bool | None,
        typer.Option(
            help="Also write Video-R1's final JSON ({results, final_acc}) per dataset and mode in "
            "RESULTS.video_r1/ (default: on with --preset paper)."
        ),
    ] = None,
    traces: Annotated[
        bool, typer.Option(help="Store per-token entropy / EMA / alpha traces (for `vreason plot`).")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Evaluate a model on Video-R1 evaluation files; batched, resumable, shardable, with a summary table."""
    with _user_errors():
        from .eval import load_samples, summary_to_markdown
        from .eval.results import check_output_path, merge_results, results_paths
        from .eval.runner import evaluate

        if preset not in (None, "paper"):
            raise ValueError(f'`--preset` must be "paper", got {preset!r}.')
        settings: dict[str, Any] = {}
        if preset == "paper":
            from .eval.presets import PAPER_SETTINGS, paper_comparison_markdown, paper_data_files

            settings = PAPER_SETTINGS
        write_video_r1 = video_r1_json if video_r1_json is not None else settings.get("video_r1_json", False)
        paths = results_paths(output)
        if merge:
            summary = merge_results(output, video_r1_json=write_video_r1)
            typer.echo(summary_to_markdown(summary))
            typer.echo(f"Merged results: {output}\nSummary: {paths['summary_md']}, {paths['summary_json']}")
            return
        if model is None:
            raise ValueError("`--model` is required (unless `--merge`).")
        if video_root is not None and not video_root.is_dir():
            raise FileNotFoundError(f"`--video-root` is not a folder: '{video_root}'.")
        if preset == "paper":
            if data:
                raise ValueError(
                    "`--preset paper` reads its six files from `--data-dir`: leave `--data` out."
                )
            data = paper_data_files(
                data_dir if data_dir is not None else (video_root or Path()) / "Evaluation"
            )
        elif data_dir is not None:
            raise ValueError("`--data-dir` only applies to `--preset paper`; pass files with `--data`.")
        if not data:
            raise ValueError("`--data` is required (unless `--merge` or `--preset paper`).")
        if dataset_name is not None and len(data) > 1:
            raise ValueError("`--dataset-name` names one dataset: pass one `--data`, or leave it out.")
        if batch_size < 1:
            raise ValueError(f"`--batch-size` must be a positive integer, got {batch_size}.")
        if num_frames is None and fps is None and max_frames is None and settings:
            fps, max_frames = settings["fps"], settings["max_frames"]
        num_frames, fps, max_frames = _frame_sampling(num_frames, fps, max_frames)
        shard_tuple = _parse_shard(shard)
        config = VReasonConfig(**{k: v for k, v in (knobs or {}).items() if k != "lite"})
        chosen_modes = _parse_modes(modes, compare, bool((knobs or {}).get("lite")), preset)
        generate_kwargs = {
            "max_new_tokens": max_new_tokens if max_new_tokens is not None else 1024,
            "do_sample": False,
        }
        check_output_path(output)  # an unwritable output fails here, before the model is loaded
        datasets = []
        for path in data:
            if not path.is_file():
                raise FileNotFoundError(f"Data file not found: '{path}'.")
            datasets.append((dataset_name or _dataset_name(path), load_samples(path)))

        model_obj, processor = _load_model(
            model, device=device, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code
        )
        summary = None
        try:
            for position, (name, samples) in enumerate(datasets):
                summary = evaluate(
                    model_obj,
                    processor,
                    samples,
                    output_path=output,
                    video_root=video_root,
                    modes=chosen_modes,
                    vreason_config=config,
                    generate_kwargs=generate_kwargs,
                    num_frames=num_frames,
                    fps=fps,
                    max_frames=max_frames,
                    video_backend=video_backend,
                    limit=limit,
                    dataset_name=name,
                    shard=shard_tuple,
                    batch_size=batch_size,
                    retry_failed=retry_failed,
                    video_r1_json=write_video_r1,
                    save_traces=traces,
                    progress=progress,
                    warmup=position == 0,  # one-time costs are paid once per process
                )
        except KeyboardInterrupt:
            typer.echo(
                f"\nInterrupted. Finished answers are saved in '{output}' (or its .rank*.jsonl files); "
                "run the same command again to resume.",
                err=True,
            )
            raise typer.Exit(130) from None
        if summary is None:
            typer.echo(
                "This rank is done; the last rank to finish merges the results and writes the summary."
            )
            return
        typer.echo(summary_to_markdown(summary))
        if preset == "paper":
            typer.echo("Ours beside the paper's Table 1 (Qwen2.5-VL-7B; accuracy and MRA in %):\n")
            typer.echo(paper_comparison_markdown(summary))
        failed = sum(m["n_failed"] for modes_ in summary["per_dataset"].values() for m in modes_.values())
        if failed:
            typer.echo(
                f"{failed} answer(s) failed (their records hold the `error`; they count 0). Fix the inputs and "
                "rerun with --retry-failed to run them again.",
                err=True,
            )
        typer.echo(f"Results: {output}\nSummary: {paths['summary_md']}, {paths['summary_json']}")
        if write_video_r1:
            typer.echo(f"Video-R1 JSON: {paths['video_r1_dir']}/")


# --------------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------------


@app.command()
def plot(
    results: Annotated[Path, typer.Argument(help="Results JSONL written by `vreason eval`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Image to write (PNG).")] = Path("entropy.png"),
    dataset: Annotated[str | None, typer.Option(help="Only this dataset (default: all records).")] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="Stop the curves where fewer samples remain (default: 10% of them).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
) -> None:
    """Plot mean entropy, its EMA (peak marked) and the alpha track per token, base vs V-Reason (paper Fig. 2)."""
    with _user_errors():
        from .eval.plots import plot_entropy_traces
        from .eval.results import read_records

        if not results.is_file():
            raise FileNotFoundError(f"Results file not found: '{results}'.")
        records = read_records(results)
        _, traces = plot_entropy_traces(records, out, dataset=dataset, min_samples=min_samples, title=title)
        for mode, data in traces.items():
            peak = "-" if data.peak_index is None else str(data.peak_index)
            typer.echo(
                f"{_label(mode) if mode in ('base', 'vreason', 'lite') else mode}: {data.num_samples} samples, "
                f"{len(data.token_index)} token positions, EMA peak at token {peak}"
            )
        typer.echo(f"Plot: {out}")


# --------------------------------------------------------------------------------------------------
# export-recipe
# --------------------------------------------------------------------------------------------------


@app.command("export-recipe")
def export_recipe(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create: a Hub custom_generate recipe repo.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder.")] = False,
) -> None:
    """Build the custom_generate recipe folder (push it to the Hub as a repo)."""
    with _user_errors():
        try:
            from .hub import build_custom_generate_dir
        except ImportError as error:
            raise ImportError(
                f"`vreason export-recipe` needs `vreason_hf.hub`, which is not available ({error})."
            ) from error
        folder = Path(build_custom_generate_dir(out_dir, overwrite=overwrite))
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        typer.echo(f"Recipe folder: {folder}")
        for name in files:
            typer.echo(f"  {name}")
        typer.echo(
            "Use it with: model.generate(**inputs, custom_generate="
            + json.dumps(str(folder))
            + ", trust_remote_code=True)"
        )


# --------------------------------------------------------------------------------------------------
# app, export-space
# --------------------------------------------------------------------------------------------------

AppFramesOption = Annotated[
    int, typer.Option("--num-frames", help="Frames sampled uniformly from each video.")
]
AppTokensOption = Annotated[
    int, typer.Option(help="Default of the page's max-new-tokens slider and of /compare.")
]
ConcurrencyOption = Annotated[
    int, typer.Option(help="Requests decoded at the same time on the one model; more wait in Gradio's queue.")
]
ExampleOption = Annotated[
    list[Path] | None,
    typer.Option("--example", metavar="VIDEO", help="An example clip offered in the page; repeat."),
]


@app.command("app")
@_with_knob_options
def app_command(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hub id or local folder of a video LMM.")
    ] = APP_MODEL,
    host: Annotated[
        str, typer.Option(help='Interface to listen on ("0.0.0.0": every interface).')
    ] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: 7860, or the next free one).")] = None,
    example: ExampleOption = None,
    num_frames: AppFramesOption = 16,
    max_new_tokens: AppTokensOption = 256,
    concurrency_limit: ConcurrencyOption = 1,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    trust_remote_code: TrustOption = False,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Serve the comparison page: a video and a question in, plain and V-Reason answers side by side (Gradio)."""
    with _user_errors():
        from .app import build_app
        from .loading import resolve_model

        # Fail now, before serving, when the model is neither local, named, cached nor reachable on the Hub.
        model = resolve_model(model)
        demo = build_app(
            model,
            vreason_config=VReasonConfig(**(knobs or {})),
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            examples=example or (),
            concurrency_limit=concurrency_limit,
            device=device,
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
        )
        try:
            demo.launch(server_name=host, server_port=port, share=False)
        except OSError as error:  # e.g. the port is taken
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"Cannot serve on {host}:{port or 'default port'}: {first}") from error


@app.command("export-space")
@_with_knob_options
def export_space(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create: a Hugging Face Space (Gradio SDK).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hub id of the video LMM the Space serves.")
    ] = APP_MODEL,
    example: ExampleOption = None,
    num_frames: AppFramesOption = 16,
    max_new_tokens: AppTokensOption = 256,
    concurrency_limit: ConcurrencyOption = 1,
    title: Annotated[str, typer.Option(help="The Space's title.")] = "V-Reason: plain vs. V-Reason decoding",
    requirement: Annotated[
        str | None,
        typer.Option(
            help="requirements.txt line installing vreason-hf (default: vreason-hf[app]==this version)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder.")] = False,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Write a folder ready to push as a Hugging Face Space serving the comparison page."""
    with _user_errors():
        from .app import build_space_dir

        folder = build_space_dir(
            out_dir,
            model_id=model,
            examples=example or (),
            vreason_config=knobs,
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            concurrency_limit=concurrency_limit,
            title=title,
            requirement=requirement,
            overwrite=overwrite,
        )
        typer.echo(f"Space folder: {folder}")
        for name in sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()):
            typer.echo(f"  {name}")
        typer.echo(
            f"Try it: cd {folder} && python app.py\n"
            f"Push it: huggingface-cli upload <user>/<space> {folder} --repo-type space"
        )


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``vreason``)."""
    try:
        code = app(args=argv, prog_name="vreason", standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("\nAborted.", err=True)
        sys.exit(130)
    except Exception as error:
        # Command-line syntax errors (click's UsageError family, vendored by typer): one line, exit status 2.
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.ctx.get_help())
            sys.exit(0)
        if type(error).__name__ == "Abort":
            typer.echo("\nAborted.", err=True)
            sys.exit(130)
        ctx = getattr(error, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"Error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
