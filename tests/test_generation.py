"""Invariants of the V-Reason decoding loop on tiny random models, real clips and the real SmolLM2."""

from __future__ import annotations

import copy
import hashlib

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration
from transformers.generation.streamers import BaseStreamer

from vreason_hf import VReasonConfig, VReasonGenerateOutput, VReasonLogitsProcessor, vreason_generate
from vreason_hf.generation import ControlledDynamicLayer, LastLayerReplay, ValueController, VReasonEngine
from vreason_hf.testing import build_tiny_llama
from vreason_hf.video import load_video

MAX_NEW = 24
QUESTION = "What is happening in this video?"


def _greedy(model, inputs, **kwargs):
    return model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, **kwargs)


def _vreason(model, inputs, config=None, **kwargs):
    return model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=config,
        **kwargs,
    )


def _state_fingerprint(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    flags = [(n, p.requires_grad, p.grad is None) for n, p in model.named_parameters()]
    modes = [m.training for m in model.modules()]
    return digest.hexdigest(), flags, modes


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_5_vl, video_inputs, real_clip):
    model, processor = tiny_qwen2_5_vl
    return model, processor, video_inputs(processor, real_clip, QUESTION)


@pytest.fixture(params=["tiny_qwen2_5_vl", "tiny_qwen2_vl", "tiny_qwen3_vl", "tiny_llava_onevision"])
def any_video_model(request, video_inputs, real_clip):
    model, processor = request.getfixturevalue(request.param)
    return model, video_inputs(processor, real_clip, QUESTION)


# --------------------------------------------------------------------------------------------- equivalences
@pytest.mark.parametrize("knobs", [{"num_steps": 0}, {"lr": 0.0}])
def test_zero_steps_equals_greedy_on_every_video_model(any_video_model, knobs):
    model, inputs = any_video_model
    assert torch.equal(_vreason(model, inputs, knobs), _greedy(model, inputs))


def test_zero_steps_equals_greedy_on_text_model(tiny_llama):
    model, tokenizer = tiny_llama
    inputs = tokenizer(["The quick brown fox"], return_tensors="pt")
    config = {"num_steps": 0, "controller_scope": "prompt"}
    assert torch.equal(_vreason(model, inputs, config), _greedy(model, inputs))


def test_default_knobs_run_and_change_the_distribution(any_video_model):
    model, inputs = any_video_model
    base = _greedy(model, inputs, return_dict_in_generate=True, output_logits=True)
    out = _vreason(model, inputs, return_dict_in_generate=True, output_logits=True)
    assert isinstance(out, VReasonGenerateOutput)
    generated = out.sequences.shape[1] - inputs["input_ids"].shape[1]
    # Token 0 is an update step and decode_after_update=True: its logits must differ from the base model's.
    assert not torch.allclose(out.logits[0], base.logits[0])
    assert out.entropies.shape == out.ema_entropies.shape == out.alphas.shape == (1, generated)
    expected_steps = len(range(0, generated, VReasonConfig().update_every)) * VReasonConfig().num_steps
    assert out.optimizer_steps.tolist() == [expected_steps]
    assert torch.isfinite(out.entropies).all()


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


def test_logits_processor_form_matches_callable(qwen):
    model, _, inputs = qwen
    config = VReasonConfig(lr=0.2, update_every=1, num_steps=2)
    expected = _vreason(model, inputs, config)
    with VReasonLogitsProcessor(model, config) as processor:
        got = _greedy(model, inputs, logits_processor=[processor])
        traces = processor.traces()
    assert torch.equal(got, expected)
    assert traces["optimizer_steps"].tolist() == [2 * (expected.shape[1] - inputs["input_ids"].shape[1])]
    assert not model.get_decoder().layers[-1]._forward_pre_hooks  # hooks removed


def test_logits_processor_rejects_lite(qwen):
    model, _, _ = qwen
    with pytest.raises(ValueError, match="lite=True"):
        VReasonLogitsProcessor(model, {"lite": True})


# --------------------------------------------------------------------------------------------- model state
def test_only_the_controller_receives_gradients_and_model_state_is_restored():
    model, tokenizer = build_tiny_llama(seed=3)
    model.train()  # a user's model in train mode with trainable weights must come back exactly as it was
    model.model.layers[0].requires_grad_(False)
    inputs = tokenizer(["Count: one two three"], return_tensors="pt")
    before = _state_fingerprint(model)

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
    assert _state_fingerprint(model) == before  # ... and nothing else changes


# --------------------------------------------------------------------------------------------- batching
def _batched_inputs(processor, video_inputs, real_clip, questions):
    single = [video_inputs(processor, real_clip, q) for q in questions]
    processor.tokenizer.padding_side = "left"
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for q in questions
    ]
    frames, metadata = load_video(real_clip, num_frames=8)
    batch = processor(
        text=texts,
        videos=[frames, frames],
        video_metadata=[copy.deepcopy(metadata), copy.deepcopy(metadata)],
        do_sample_frames=False,
        padding=True,
        return_tensors="pt",
    )
    return single, batch


def test_batched_equals_unbatched_per_row(tiny_qwen2_5_vl, video_inputs, real_clip):
    model, processor = tiny_qwen2_5_vl
    questions = ["Why?", "Describe every object that appears in this clip, in order."]
    single, batch = _batched_inputs(processor, video_inputs, real_clip, questions)
    assert batch["attention_mask"][0, 0] == 0  # the short prompt is left-padded
    config = VReasonConfig(lr=0.2)
    for kwargs in ({}, {"custom_generate": vreason_generate, "vreason_config": config}):
        batched = model.generate(**batch, max_new_tokens=MAX_NEW, do_sample=False, **kwargs)
        for row, inputs in enumerate(single):
            alone = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, **kwargs)
            prompt = batch["input_ids"].shape[1]
            got = batched[row, prompt:]
            want = alone[0, inputs["input_ids"].shape[1] :]
            pad = model.generation_config.pad_token_id
            assert torch.equal(got[: want.numel()], want), (row, kwargs.keys())
            assert bool((got[want.numel() :] == pad).all())


def test_finished_rows_stop_being_optimised(tiny_llama):
    model, tokenizer = tiny_llama
    tokenizer.padding_side = "left"
    inputs = tokenizer(["a b c", "hello there, how are you"], return_tensors="pt", padding=True)
    greedy = _greedy(model, inputs)
    eos = int(greedy[0, inputs["input_ids"].shape[1] + 3])  # make row 0 stop after 4 tokens
    out = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        eos_token_id=eos,
        custom_generate=vreason_generate,
        vreason_config={"controller_scope": "prompt", "num_steps": 0},
        return_dict_in_generate=True,
    )
    assert torch.isnan(out.entropies[0, 4:]).all() and (out.alphas[0, 4:] == 0).all()
    out = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        eos_token_id=eos,
        custom_generate=vreason_generate,
        vreason_config={"controller_scope": "prompt", "update_every": 1, "lr": 1e-6},
        return_dict_in_generate=True,
    )
    finished_at = (
        int(torch.isnan(out.entropies[0]).nonzero()[0]) if torch.isnan(out.entropies[0]).any() else None
    )
    assert finished_at is not None
    assert out.optimizer_steps[0] == finished_at
    assert out.optimizer_steps[1] == out.sequences.shape[1] - inputs["input_ids"].shape[1]


# --------------------------------------------------------------------------------------------- sampling, streaming
def test_sampling_is_seeded_and_zero_steps_equals_plain_sampling(qwen):
    model, _, inputs = qwen
    kwargs = {"do_sample": True, "temperature": 0.9, "top_p": 0.95, "top_k": 50, "max_new_tokens": MAX_NEW}
    torch.manual_seed(0)
    plain = model.generate(**inputs, **kwargs)
    torch.manual_seed(0)
    zero = model.generate(
        **inputs, custom_generate=vreason_generate, vreason_config={"num_steps": 0}, **kwargs
    )
    assert torch.equal(plain, zero)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append(model.generate(**inputs, custom_generate=vreason_generate, min_p=0.05, **kwargs))
    assert torch.equal(runs[0], runs[1])


class _Collect(BaseStreamer):
    def __init__(self):
        self.chunks, self.ended = [], False

    def put(self, value):
        self.chunks.append(value.reshape(-1).tolist())

    def end(self):
        self.ended = True


def test_streamer_receives_prompt_and_every_token(qwen):
    model, _, inputs = qwen
    streamer = _Collect()
    out = _vreason(model, inputs, vreason_streamer=streamer)
    assert streamer.ended
    assert streamer.chunks[0] == inputs["input_ids"][0].tolist()
    assert [t for chunk in streamer.chunks[1:] for t in chunk] == out[
        0, inputs["input_ids"].shape[1] :
    ].tolist()


# --------------------------------------------------------------------------------------------- Lite
@pytest.mark.parametrize("scope", ["per_layer", "shared"])
def test_lite_keeps_the_rounded_share_of_video_rows_in_every_layer(qwen, scope):
    model, _, inputs = qwen
    n_video = int((inputs["input_ids"] == model.config.video_token_id).sum())
    prompt = inputs["input_ids"].shape[1]
    ratio = 0.3
    kept = round((1 - ratio) * n_video)
    out = _vreason(
        model,
        inputs,
        {"lite": True, "prune_ratio": ratio, "prune_scope": scope},
        return_dict_in_generate=True,
    )
    generated = out.sequences.shape[1] - prompt
    for layer in out.cache.layers:
        # The cache holds every token but the last generated one.
        assert layer.keys.shape[-2] == prompt - n_video + kept + generated - 1
        assert layer.values.shape[-2] == layer.keys.shape[-2]
    assert type(out.cache.layers[-1]) is not ControlledDynamicLayer


def test_lite_with_nothing_to_prune_equals_plain_v_reason(qwen):
    model, _, inputs = qwen
    config = {"lr": 0.2}
    assert torch.equal(
        _vreason(model, inputs, {**config, "lite": True, "prune_ratio": 0.0}), _vreason(model, inputs, config)
    )


# --------------------------------------------------------------------------------------------- errors
def test_video_scope_without_video_tokens_says_use_prompt(tiny_llama, qwen):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match='controller_scope="prompt"'):
        _vreason(model, tokenizer(["hi"], return_tensors="pt"))
    qmodel, processor, _ = qwen
    text_only = processor(text=["no video here"], return_tensors="pt")
    with pytest.raises(ValueError, match="found no video tokens"):
        _vreason(qmodel, text_only)


def test_unsupported_generation_modes_raise(qwen):
    model, _, inputs = qwen
    with pytest.raises(ValueError, match="num_beams=2"):
        _vreason(model, inputs, num_beams=2)
    with pytest.raises(ValueError, match="assisted decoding"):
        _vreason(model, inputs, prompt_lookup_num_tokens=3)
    with pytest.raises(TypeError, match="dynamic"):
        _vreason(model, inputs, cache_implementation="static")
    with pytest.raises(TypeError, match="vreason_config"):
        _vreason(model, inputs, config=[1, 2])
    with pytest.raises(TypeError, match="did you mean `lr`"):
        _vreason(model, inputs, {"lrr": 0.1})


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


# --------------------------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_smollm2_zero_steps_equals_greedy_and_v_reason_moves_the_distribution(smollm2):
    model, tokenizer = smollm2
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    kwargs = {"max_new_tokens": 16, "do_sample": False}
    greedy = model.generate(**inputs, **kwargs, return_dict_in_generate=True, output_logits=True)
    zero = model.generate(
        **inputs,
        **kwargs,
        custom_generate=vreason_generate,
        vreason_config={"controller_scope": "prompt", "num_steps": 0},
    )
    assert torch.equal(zero, greedy.sequences)
    out = model.generate(
        **inputs,
        **kwargs,
        custom_generate=vreason_generate,
        vreason_config={"controller_scope": "prompt"},
        return_dict_in_generate=True,
        output_logits=True,
    )
    assert not torch.allclose(out.logits[0], greedy.logits[0])
    assert torch.isfinite(out.entropies).all() and out.optimizer_steps.item() > 0
    assert "Paris" in tokenizer.decode(out.sequences[0, inputs["input_ids"].shape[1] :])


def test_replay_does_not_record_its_own_call(qwen):
    model, _, inputs = qwen
    cache = DynamicCache(config=model.config)
    with LastLayerReplay(model) as replay, torch.no_grad():
        model(**inputs, cache=cache)
        hidden, recorded_cache = replay.hidden.clone(), replay.cache
        replay.logits(cache.layers[-1], None)
        assert replay.cache is recorded_cache and torch.equal(replay.hidden, hidden)


def test_config_from_another_copy_of_the_code_is_accepted(qwen):
    """A Hub repo's remote code has its own VReasonConfig class; the loop takes it by its knobs."""
    from vreason_hf.generation.engine import as_vreason_config

    class OtherCopy:
        model_type = "vreason"

        def knobs(self):
            return {"lr": 0.3, "update_every": 3}

    assert as_vreason_config(OtherCopy()).knobs() == VReasonConfig(lr=0.3, update_every=3).knobs()


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
