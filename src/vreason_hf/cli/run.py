# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason run`: answer one question about a video (or a text-only question) with V-Reason, optionally beside
plain decoding, with the comparison table and the entropy plot."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ..assets import NAMED_MODELS
from .common import (
    BackendOption,
    DeviceMapOption,
    DeviceOption,
    DtypeOption,
    FpsOption,
    MaxFramesOption,
    ModelOption,
    NumFramesOption,
    TrustOption,
    command_scope,
    frame_sampling,
    with_knob_options,
)
from .compare import LABELS, comparison_table, memory_note, printable, trace_records

__all__ = ["run"]


def _print_answers(results: dict[str, Any]) -> None:
    for mode, result in results.items():
        typer.echo(f"\n[{LABELS[mode]}]\n{printable(result.text)}")
    typer.echo("")
    typer.echo(comparison_table(results))
    typer.echo(
        "(post-peak entropy = mean entropy, in nats, of the tokens after the peak of the entropy's moving average; "
        f"{memory_note(next(iter(results.values())).memory_source)})"
    )


def _plot(results: dict[str, Any], out: Path, dataset: str, title: str) -> None:
    from ..eval.plots import plot_entropy_traces

    plot_entropy_traces(trace_records(results, dataset), out, min_samples=1, title=title)
    typer.echo(f"Entropy plot: {out}")


def _model_inputs(
    model_obj: Any,
    processor: Any,
    *,
    model: str,
    question: str,
    video: Path | None,
    sampling: tuple[int | None, float | None, int | None],
    video_backend: str,
) -> Any:
    """The question's model inputs (with the sampled frames of `video`), saying what went in."""
    from ..inputs import build_inputs, is_multimodal
    from ..video import load_video

    if video is None:
        return build_inputs(processor, question)
    if not is_multimodal(processor):
        raise ValueError(f"{model!r} is a text-only model: it cannot take `--video`.")
    num_frames, fps, max_frames = sampling
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
    return inputs


@with_knob_options
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
    with command_scope():
        from ..configuration_vreason import VReasonConfig

        sampling = frame_sampling(num_frames, fps, max_frames)
        config = VReasonConfig(**(knobs or {}))
        if video is not None and not video.is_file():
            raise FileNotFoundError(f"Video file not found: '{video}'.")
        if video is None and config.controller_scope != "prompt":
            raise ValueError(
                "Without `--video` there are no video tokens to control: pass `--controller-scope prompt`."
            )
        if plot is not None:
            import matplotlib  # noqa: F401  (fail before the generation, not after)

        from ..eval.generation import generate_answer, warm_up
        from ..loading import load_model

        model_obj, processor = load_model(
            model, device=device, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code
        )
        typer.echo(f"Model: {model} ({type(model_obj).__name__}, {model_obj.device}, {model_obj.dtype})")
        if model in NAMED_MODELS and NAMED_MODELS[model].random and not Path(model).is_dir():
            typer.echo(f"({model} has random weights: its words are meaningless; it shows the video path.)")
        inputs = _model_inputs(
            model_obj,
            processor,
            model=model,
            question=question,
            video=video,
            sampling=sampling,
            video_backend=video_backend,
        )
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
            _plot(results, plot, "run", f"{model}: {'base vs ' if compare else ''}{LABELS[mode]}")
