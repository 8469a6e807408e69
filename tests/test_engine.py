"""`VReasonEngine` (`vreason_hf.generation.engine`), the per-generation state behind the loop: gradients reach
only the controller and the model comes back as it was, knobs are checked again when a generation starts, and
encoder-decoder models and non-finite logits are refused."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from vreason_hf import VReasonConfig, vreason_generate
from vreason_hf.generation import ValueController, VReasonEngine
from vreason_hf.testing import build_tiny_llama, greedy_vreason, model_fingerprint

MAX_NEW = 24


_vreason = partial(greedy_vreason, max_new_tokens=MAX_NEW)


# ------------------------------------------------------------------------------------------------ model state


def test_only_the_controller_receives_gradients_and_model_state_is_restored():
    model, tokenizer = build_tiny_llama(seed=3)
    model.train()  # a user's model in train mode with trainable weights must come back exactly as it was
    model.model.layers[0].requires_grad_(False)
    inputs = tokenizer(["Count: one two three"], return_tensors="pt")
    before = model_fingerprint(model)

    seen = []
    original = ValueController.adam_step

    def spy(self, grad, rows, lr=None):
        seen.append(grad.abs().sum().item())
        assert all(p.grad is None for p in model.parameters())
        return original(self, grad, rows, lr)

    ValueController.adam_step = spy
    try:
        out = _vreason(model, inputs, {"controller_scope": "prompt", "lr": 0.3})
    finally:
        ValueController.adam_step = original
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert seen and all(g > 0 for g in seen)  # gradients reach θ ...
    assert model_fingerprint(model) == before  # ... and nothing else changes


# ----------------------------------------------------------------------------------------------------- checks


def test_knobs_are_checked_again_when_a_generation_starts(tiny_llama):
    model, tokenizer = tiny_llama
    config = VReasonConfig(controller_scope="prompt")
    config.__dict__["update_every"] = 0  # got in around `__setattr__`
    with pytest.raises(ValueError, match="`update_every` must be >= 1"):
        _vreason(model, tokenizer(["hello"], return_tensors="pt"), config)


def test_encoder_decoder_models_are_rejected():
    config = T5Config(
        vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0
    )
    model = T5ForConditionalGeneration(config).eval()
    with pytest.raises(ValueError, match="encoder-decoder"):
        VReasonEngine(model, VReasonConfig(controller_scope="prompt"), torch.ones(1, 3, dtype=torch.long))


def test_non_finite_logits_raise():
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        )
    ).eval()
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite next-token logits"):
        model.generate(
            torch.ones(1, 4, dtype=torch.long),
            max_new_tokens=2,
            custom_generate=vreason_generate,
            vreason_config={"controller_scope": "prompt"},
        )


def test_non_finite_logits_during_decoding_raise(qwen, monkeypatch):
    model, _, inputs = qwen
    from vreason_hf.generation import engine as engine_module

    original = engine_module.entropy
    calls = {"n": 0}

    def poisoned(logits):
        calls["n"] += 1
        h = original(logits)
        return h * float("nan") if calls["n"] == 3 else h  # token 2 (not an update step) goes bad

    monkeypatch.setattr(engine_module, "entropy", poisoned)
    with pytest.raises(FloatingPointError, match=r"first at generated token\(s\) \[2\]"):
        _vreason(model, inputs)
