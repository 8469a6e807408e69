"""One measured generation (`vreason_hf.eval.generation`): traces of plain decoding, batched rows equal solo answers,
and every route to `generate`, a V-Reason model repo's own included."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from vreason_hf import VReasonConfig, save_vreason_model
from vreason_hf.eval import generate_answer, generate_batch
from vreason_hf.inputs import Prompt, build_batch_inputs, build_inputs
from vreason_hf.testing import build_tiny_llama, build_tiny_qwen2_5_vl
from vreason_hf.video import load_video


def test_base_traces_match_the_vreason_engine_with_zero_steps(tiny_qwen2_5_vl, real_clip):
    """Plain decoding records the same entropy / EMA / α as the engine computes when it never optimises."""
    model, processor = tiny_qwen2_5_vl
    frames, metadata = load_video(real_clip, num_frames=4)
    inputs = build_inputs(processor, "What happens?", video=frames, video_metadata=metadata)
    config = VReasonConfig(num_steps=0, ema_beta=0.5)
    generation = {"max_new_tokens": 6}
    base = generate_answer(
        model, processor, inputs, mode="base", vreason_config=config, generate_kwargs=generation
    )
    frozen = generate_answer(model, processor, inputs, vreason_config=config, generate_kwargs=generation)
    assert base.text == frozen.text and base.output_tokens == frozen.output_tokens
    for name in ("entropies", "ema_entropies", "alphas"):
        torch.testing.assert_close(
            torch.tensor(getattr(base, name)), torch.tensor(getattr(frozen, name)), atol=1e-4, rtol=1e-4
        )
    assert frozen.optimizer_steps == 0


def test_text_only_batch_rows_equal_solo_answers():
    model, tokenizer = build_tiny_llama()
    prompts = [Prompt("hi"), Prompt("hello there, how are you today?")]
    batch = build_batch_inputs(tokenizer, prompts)
    config = {"controller_scope": "prompt", "lr": 0.2}
    rows = generate_batch(
        model, tokenizer, batch, vreason_config=config, generate_kwargs={"max_new_tokens": 6}
    )
    for prompt, row in zip(prompts, rows, strict=True):
        alone = generate_answer(
            model,
            tokenizer,
            build_inputs(tokenizer, prompt.text),
            vreason_config=config,
            generate_kwargs={"max_new_tokens": 6},
        )
        assert (row.token_ids, row.optimizer_steps, row.batch_size) == (
            alone.token_ids,
            alone.optimizer_steps,
            2,
        )


def test_batches_must_be_left_padded():
    model, tokenizer = build_tiny_llama()
    right = tokenizer(["hi", "hello there"], return_tensors="pt", padding=True, padding_side="right")
    with pytest.raises(ValueError, match="right-padded; decoder-only generation needs left padding"):
        generate_batch(model, tokenizer, right, mode="base")
    with pytest.raises(ValueError, match="takes one sample, got a batch of 2: use `generate_batch`"):
        generate_answer(model, tokenizer, right, mode="base")


def test_a_vreason_model_repo_decodes_plainly_in_mode_base_and_with_the_given_knobs_otherwise(
    real_clip, tmp_path
):
    """A repo loaded with `trust_remote_code=True` has its own V-Reason `generate`: it is told the mode's knobs."""
    base, processor = build_tiny_qwen2_5_vl()
    knobs = {"lr": 0.3, "update_every": 1}  # strong enough to change the tiny model's tokens
    repo = save_vreason_model(base, tmp_path / "repo", knobs, processor=processor)
    model = AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True)
    inputs = build_inputs(processor, "What happens?", video=real_clip, num_frames=4)
    answers = {}
    for mode in ("base", "vreason"):
        options = {"mode": mode, "vreason_config": knobs, "generate_kwargs": {"max_new_tokens": 6}}
        on_repo = generate_answer(model, processor, inputs, **options)
        answers[mode] = generate_answer(base, processor, inputs, **options)
        assert (on_repo.token_ids, on_repo.optimizer_steps) == (
            answers[mode].token_ids,
            answers[mode].optimizer_steps,
        )
        for name in ("entropies", "ema_entropies", "alphas"):
            torch.testing.assert_close(
                torch.tensor(getattr(on_repo, name)),
                torch.tensor(getattr(answers[mode], name)),
                atol=1e-4,
                rtol=1e-4,
            )
    assert answers["base"].token_ids != answers["vreason"].token_ids  # so mode "base" really decoded plainly
