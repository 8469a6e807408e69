# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason eval`: evaluate a model on Video-R1 evaluation files (batched, resumable, shardable), merge the shards
of a data-parallel run, or run the paper's evaluation (`--preset paper`)."""

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    BackendOption,
    DeviceMapOption,
    DeviceOption,
    DtypeOption,
    FpsOption,
    MaxFramesOption,
    NumFramesOption,
    TrustOption,
    command_scope,
    frame_sampling,
    with_knob_options,
)

__all__ = ["eval_command"]

# Options of `eval` alone ----------------------------------------------------------------------------

_Output = Annotated[
    Path, typer.Option("--output", "-o", help="Results JSONL (summary .json/.md written next to it).")
]
_Model = Annotated[str | None, typer.Option("--model", "-m", help="Hub id or local folder of the model.")]
_Data = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="FILE", help="Video-R1 evaluation file (.json or .jsonl); repeat for several datasets."
    ),
]
_VideoRoot = Annotated[
    Path | None,
    typer.Option(help="Folder the `path` fields are relative to (default: the current directory)."),
]
_Preset = Annotated[
    str | None,
    typer.Option(
        help="\"paper\": the paper's six benchmarks (Video-R1's eval_*.json in --data-dir) with its settings "
        "(modes base, vreason, lite; greedy, 1024 new tokens; 2 fps, at most 16 frames), then our numbers beside "
        "the paper's. Options given explicitly override its settings."
    ),
]
_DataDir = Annotated[
    Path | None,
    typer.Option(
        help="With --preset paper: the folder of Video-R1's evaluation JSONs (default: VIDEO_ROOT/Evaluation)."
    ),
]
_Limit = Annotated[int | None, typer.Option(help="Only the first N samples of each file.")]
_Compare = Annotated[bool, typer.Option(help="Evaluate plain decoding too (modes base and vreason).")]
_Modes = Annotated[
    str | None,
    typer.Option(help="Comma-separated modes among base, vreason, lite (instead of --compare / --lite)."),
]
_DatasetName = Annotated[
    str | None,
    typer.Option(help="Dataset name in the results (default: file name without `eval_`); one --data only."),
]
_BatchSize = Annotated[
    int,
    typer.Option(
        help="Decode this many samples together (left-padded; each keeps its own V-Reason state, so the "
        "answers do not change, only the speed)."
    ),
]
_MaxNewTokens = Annotated[
    int | None, typer.Option(help="At most this many new tokens (default: 1024, the paper's).")
]
_MaxPixels = Annotated[
    int | None,
    typer.Option(
        help="Resize each video frame to at most this many pixels, as Video-R1 does (100352 = 128*28*28; "
        "Qwen2-VL / Qwen2.5-VL video processors). Default: the model's own budget; --preset paper: 100352."
    ),
]
_Shard = Annotated[
    str | None,
    typer.Option(help="INDEX/COUNT: run one shard by hand (default: from accelerate launch / torchrun)."),
]
_Merge = Annotated[
    bool,
    typer.Option("--merge", help="Only merge RESULTS.rank*.jsonl into --output and write the summary."),
]
_RetryFailed = Annotated[
    bool,
    typer.Option(
        "--retry-failed",
        help="Run again the samples recorded as failed (e.g. a corrupt video since replaced); "
        "by default a rerun skips them.",
    ),
]
_VideoR1Json = Annotated[
    bool | None,
    typer.Option(
        help="Also write Video-R1's final JSON ({results, final_acc}) per dataset and mode in "
        "RESULTS.video_r1/ (default: on with --preset paper)."
    ),
]
_Traces = Annotated[
    bool, typer.Option(help="Store per-token entropy / EMA / alpha traces (for `vreason plot`).")
]
_Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


# Checking the options -----------------------------------------------------------------------------


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
    from ..eval.generation import MODES

    if modes is None:
        if preset == "paper":
            from ..eval.presets import PAPER_SETTINGS

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


def _preset_settings(preset: str | None) -> dict[str, Any]:
    """The settings `--preset` stands for (none without one)."""
    if preset not in (None, "paper"):
        raise ValueError(f'`--preset` must be "paper", got {preset!r}.')
    if preset is None:
        return {}
    from ..eval.presets import PAPER_SETTINGS

    return PAPER_SETTINGS


def _preset_pixel_budget(processor: Any, max_pixels: int) -> int | None:
    """The preset's per-frame pixel budget where the video processor takes one; elsewhere `None`, said once."""
    from ..eval.samples import takes_pixel_budget

    if takes_pixel_budget(processor):
        return max_pixels
    name = type(getattr(processor, "video_processor", None)).__name__
    typer.echo(
        f"Note: the preset's per-frame pixel budget ({max_pixels}, Video-R1's) applies to Qwen2-VL / Qwen2.5-VL "
        f"video processors; this model's ({name}) keeps its own.",
        err=True,
    )
    return None


def _data_files(
    model: str | None,
    data: list[Path] | None,
    data_dir: Path | None,
    video_root: Path | None,
    preset: str | None,
    dataset_name: str | None,
    batch_size: int,
) -> list[Path]:
    """Check the options that say what to evaluate; return the evaluation files."""
    if model is None:
        raise ValueError("`--model` is required (unless `--merge`).")
    if video_root is not None and not video_root.is_dir():
        raise FileNotFoundError(f"`--video-root` is not a folder: '{video_root}'.")
    if preset == "paper":
        from ..eval.presets import paper_data_files

        if data:
            raise ValueError("`--preset paper` reads its six files from `--data-dir`: leave `--data` out.")
        data = paper_data_files(data_dir if data_dir is not None else (video_root or Path()) / "Evaluation")
    elif data_dir is not None:
        raise ValueError("`--data-dir` only applies to `--preset paper`; pass files with `--data`.")
    if not data:
        raise ValueError("`--data` is required (unless `--merge` or `--preset paper`).")
    if dataset_name is not None and len(data) > 1:
        raise ValueError("`--dataset-name` names one dataset: pass one `--data`, or leave it out.")
    if batch_size < 1:
        raise ValueError(f"`--batch-size` must be a positive integer, got {batch_size}.")
    return data


def _read_datasets(data: list[Path], dataset_name: str | None) -> list[tuple[str, list[dict]]]:
    """`(name, samples)` per evaluation file, every file read and checked before the model is loaded."""
    from ..eval import load_samples

    datasets = []
    for path in data:
        if not path.is_file():
            raise FileNotFoundError(f"Data file not found: '{path}'.")
        datasets.append((dataset_name or _dataset_name(path), load_samples(path)))
    return datasets


# Running and reporting ----------------------------------------------------------------------------


def _evaluate_all(
    model: Any, processor: Any, datasets: list[tuple[str, list[dict]]], output: Path, **options: Any
) -> dict | None:
    """`evaluate` each dataset into `output`; the summary (`None` on a rank that does not merge)."""
    from ..eval.runner import evaluate

    summary = None
    try:
        for position, (name, samples) in enumerate(datasets):
            summary = evaluate(
                model,
                processor,
                samples,
                output_path=output,
                dataset_name=name,
                warmup=position == 0,  # one-time costs are paid once per process
                **options,
            )
    except KeyboardInterrupt:
        typer.echo(
            f"\nInterrupted. Finished answers are saved in '{output}' (or its .rank*.jsonl files); "
            "run the same command again to resume.",
            err=True,
        )
        raise typer.Exit(130) from None
    return summary


def _report(
    summary: dict | None, *, output: Path, paths: dict[str, Path], paper: bool, video_r1: bool
) -> None:
    from ..eval import summary_to_markdown

    if summary is None:
        typer.echo("This rank is done; the last rank to finish merges the results and writes the summary.")
        return
    typer.echo(summary_to_markdown(summary))
    if paper:
        from ..eval.presets import paper_comparison_markdown

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
    if video_r1:
        typer.echo(f"Video-R1 JSON: {paths['video_r1_dir']}/")


def _merge(output: Path, paths: dict[str, Path], video_r1: bool) -> None:
    from ..eval import summary_to_markdown
    from ..eval.results import merge_results

    summary = merge_results(output, video_r1_json=video_r1)
    typer.echo(summary_to_markdown(summary))
    typer.echo(f"Merged results: {output}\nSummary: {paths['summary_md']}, {paths['summary_json']}")


# The command --------------------------------------------------------------------------------------


@with_knob_options
def eval_command(
    output: _Output,
    model: _Model = None,
    data: _Data = None,
    video_root: _VideoRoot = None,
    preset: _Preset = None,
    data_dir: _DataDir = None,
    limit: _Limit = None,
    compare: _Compare = False,
    modes: _Modes = None,
    dataset_name: _DatasetName = None,
    batch_size: _BatchSize = 1,
    num_frames: NumFramesOption = None,
    fps: FpsOption = None,
    max_frames: MaxFramesOption = None,
    max_pixels: _MaxPixels = None,
    max_new_tokens: _MaxNewTokens = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    device_map: DeviceMapOption = None,
    trust_remote_code: TrustOption = False,
    video_backend: BackendOption = "auto",
    shard: _Shard = None,
    merge: _Merge = False,
    retry_failed: _RetryFailed = False,
    video_r1_json: _VideoR1Json = None,
    traces: _Traces = True,
    progress: _Progress = True,
    knobs: dict[str, Any] | None = None,
) -> None:
    """Evaluate a model on Video-R1 evaluation files; batched, resumable, shardable, with a summary table."""
    with command_scope():
        from ..configuration_vreason import VReasonConfig
        from ..eval.results import check_output_path, results_paths
        from ..loading import load_model

        settings = _preset_settings(preset)
        write_video_r1 = video_r1_json if video_r1_json is not None else settings.get("video_r1_json", False)
        paths = results_paths(output)
        if merge:
            _merge(output, paths, write_video_r1)
            return
        data = _data_files(model, data, data_dir, video_root, preset, dataset_name, batch_size)
        if num_frames is None and fps is None and max_frames is None and settings:
            fps, max_frames = settings["fps"], settings["max_frames"]
        num_frames, fps, max_frames = frame_sampling(num_frames, fps, max_frames)
        shard_tuple = _parse_shard(shard)
        config = VReasonConfig(**{k: v for k, v in (knobs or {}).items() if k != "lite"})
        chosen_modes = _parse_modes(modes, compare, bool((knobs or {}).get("lite")), preset)
        check_output_path(output)  # an unwritable output fails here, before the model is loaded
        datasets = _read_datasets(data, dataset_name)
        model_obj, processor = load_model(
            model, device=device, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code
        )
        if max_pixels is None and "max_pixels" in settings:
            max_pixels = _preset_pixel_budget(processor, settings["max_pixels"])
        summary = _evaluate_all(
            model_obj,
            processor,
            datasets,
            output,
            video_root=video_root,
            modes=chosen_modes,
            vreason_config=config,
            generate_kwargs={
                "max_new_tokens": max_new_tokens if max_new_tokens is not None else 1024,
                "do_sample": False,
            },
            num_frames=num_frames,
            fps=fps,
            max_frames=max_frames,
            max_pixels=max_pixels,
            video_backend=video_backend,
            limit=limit,
            shard=shard_tuple,
            batch_size=batch_size,
            retry_failed=retry_failed,
            video_r1_json=write_video_r1,
            save_traces=traces,
            progress=progress,
        )
        _report(summary, output=output, paths=paths, paper=preset == "paper", video_r1=write_video_r1)
