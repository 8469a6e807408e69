"""Last-layer replay (`vreason_hf.generation.replay`): replayed logits equal a real forward, with or without a
trained controller, and a replay records only the model's own call."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from vreason_hf.generation import ControlledDynamicLayer, LastLayerReplay, ValueController


def test_replayed_logits_equal_full_forward(qwen):
    model, _, inputs = qwen
    cache = DynamicCache(config=model.config)
    with LastLayerReplay(model) as replay, torch.no_grad():
        full = model(**inputs, cache=cache).logits[:, -1].float()
        replayed = replay.logits(cache.layers[-1], None)
    assert torch.allclose(replayed, full, atol=1e-5, rtol=0)


def test_replay_with_trained_controller_equals_real_forward(qwen):
    """A real forward through the controlled cache layer sees exactly what the replay computes."""
    model, _, inputs = qwen
    cache = DynamicCache(config=model.config)
    video = inputs["input_ids"] == model.config.video_token_id
    rows = video.nonzero()[:, 1][None]
    with LastLayerReplay(model) as replay, torch.no_grad():
        out = model(**inputs, cache=cache)
        layer = cache.layers[-1]
        heads, head_dim = layer.values.shape[1], layer.values.shape[-1]
        controller = ValueController(rows, torch.ones_like(rows, dtype=torch.bool), heads, head_dim)
        controller.adam_step(torch.randn_like(controller.theta), torch.ones(1, dtype=torch.bool), lr=0.3)
        ControlledDynamicLayer.install(layer, controller)
        next_token = out.logits[:, -1].argmax(-1, keepdim=True)
        real = model(input_ids=next_token, cache=cache, mm_token_type_ids=torch.zeros_like(next_token))
        real = real.logits[:, -1].float()
        replayed = replay.logits(layer, controller)
        ControlledDynamicLayer.uninstall(layer)
    assert torch.allclose(replayed, real, atol=1e-5, rtol=0)
    assert type(layer) is not ControlledDynamicLayer


def test_replay_does_not_record_its_own_call(qwen):
    model, _, inputs = qwen
    cache = DynamicCache(config=model.config)
    with LastLayerReplay(model) as replay, torch.no_grad():
        model(**inputs, cache=cache)
        hidden, recorded_cache = replay.hidden.clone(), replay.cache
        replay.logits(cache.layers[-1], None)
        assert replay.cache is recorded_cache and torch.equal(replay.hidden, hidden)
