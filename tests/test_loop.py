"""The V-Reason decoding loop (`vreason_hf.generation.loop`, the `custom_generate` callable) end to end on tiny
random models, real clips and the real SmolLM2: zero steps equals greedy, batched equals unbatched, finished rows,
sampling, the streamer and its live traces, `torch.inference_mode()`, and the generation modes it refuses."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from transformers.generation.streamers import BaseStreamer

from vreason_hf import VReasonConfig, VReasonGenerateOutput, vreason_generate
from vreason_hf.testing import VIDEO_FIXTURES, greedy_vreason, model_fingerprint
from vreason_hf.video import load_video

MAX_NEW = 24
QUESTION = "What is happening in this video?"
KNOBS = {"lr": 0.3, "update_every": 1}


def _greedy(model, inputs, **kwargs):
    return model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, **kwargs)


_vreason = partial(greedy_vreason, max_new_tokens=MAX_NEW)


@pytest.fixture(params=VIDEO_FIXTURES)
def any_video_model(request, video_inputs, real_clip):
    model, processor = request.getfixturevalue(request.param)
    return model, video_inputs(processor, real_clip, QUESTION)


# ----------------------------------------------------------------------------------------------- equivalences


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


# --------------------------------------------------------------------------------------------------- batching


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


# ---------------------------------------------------------------------------------------- sampling, streaming


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


# ------------------------------ live traces: a `vreason_streamer` with `put_traces` sees every token's traces


class _TraceCollector(BaseStreamer):
    """Records the order of calls: ("traces", ...) and ("put", tokens)."""

    def __init__(self):
        self.calls = []

    def put(self, value):
        self.calls.append(("put", value.reshape(-1).tolist()))

    def put_traces(self, entropies, ema_entropies, alphas, optimizer_steps):
        for tensor in (entropies, ema_entropies, alphas, optimizer_steps):
            assert tensor.device.type == "cpu"
        self.calls.append(("traces", entropies, ema_entropies, alphas, optimizer_steps))

    def end(self):
        self.calls.append(("end",))


def _generate(model, inputs, streamer, knobs):
    return model.generate(
        **inputs,
        custom_generate=vreason_generate,
        vreason_config=knobs,
        vreason_streamer=streamer,
        max_new_tokens=12,
        do_sample=False,
        return_dict_in_generate=True,
    )


@pytest.mark.parametrize("knobs", [{}, {"num_steps": 0}, {"update_every": 3, "num_steps": 2}])
def test_put_traces_gets_each_tokens_traces_before_the_token(tiny_qwen2_5_vl, video_inputs, real_clip, knobs):
    model, processor = tiny_qwen2_5_vl
    inputs = video_inputs(processor, real_clip, QUESTION)
    streamer = _TraceCollector()
    out = _generate(model, inputs, streamer, knobs)
    generated = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()

    assert streamer.calls[0] == ("put", inputs["input_ids"][0].tolist())
    assert streamer.calls[-1] == ("end",)
    body = streamer.calls[1:-1]
    # Strictly alternating: the traces of token k, then token k itself.
    assert [call[0] for call in body] == ["traces", "put"] * len(generated)
    assert [call[1] for call in body[1::2]] == [[token] for token in generated]
    traces = body[0::2]
    for field, position in (("entropies", 1), ("ema_entropies", 2), ("alphas", 3)):
        live = torch.stack([call[position] for call in traces], dim=1)  # (batch, generated)
        torch.testing.assert_close(live, getattr(out, field).cpu(), rtol=0, atol=0, equal_nan=True)
    steps = [int(call[4][0]) for call in traces]
    assert steps == sorted(steps) and steps[-1] == int(out.optimizer_steps[0])
    if knobs.get("num_steps") == 0:
        assert steps[-1] == 0
    else:
        # Token k is an update step when k % update_every == 0: the count grows on exactly those tokens.
        every, per = knobs.get("update_every", 2), knobs.get("num_steps", 1)
        assert steps == [per * (k // every + 1) for k in range(len(generated))]


def test_put_traces_has_one_entry_per_batch_row(tiny_llama):
    model, tokenizer = tiny_llama
    inputs = tokenizer(["The quick brown fox", "Hi"], return_tensors="pt", padding=True, padding_side="left")
    streamer = _TraceCollector()
    out = _generate(model, inputs, streamer, {"controller_scope": "prompt"})
    traces = [call for call in streamer.calls if call[0] == "traces"]
    assert traces and all(tensor.shape == (2,) for call in traces for tensor in call[1:])
    torch.testing.assert_close(
        torch.stack([call[1] for call in traces], dim=1), out.entropies.cpu(), rtol=0, atol=0, equal_nan=True
    )


# --------------------------------------------------------------------------------------------- inference_mode


@pytest.mark.parametrize("knobs", [KNOBS, {**KNOBS, "lite": True}, {"num_steps": 0}])
def test_the_callable_works_under_inference_mode(qwen, knobs):
    model, _, inputs = qwen
    expected = _vreason(model, inputs, knobs)
    before = model_fingerprint(model)
    with torch.inference_mode():
        got = _vreason(model, inputs, knobs)
    assert torch.equal(got, expected)
    assert model_fingerprint(model) == before


# ----------------------------------------------------------------------------------------------------- errors


def test_unsupported_generation_modes_raise(qwen):
    model, _, inputs = qwen
    with pytest.raises(ValueError, match="num_beams=2"):
        _vreason(model, inputs, num_beams=2)
    with pytest.raises(ValueError, match="assisted decoding"):
        _vreason(model, inputs, prompt_lookup_num_tokens=3)
    with pytest.raises(TypeError, match="dynamic"):
        _vreason(model, inputs, cache_implementation="static")
    with pytest.raises(TypeError, match="vreason_config"):
        _vreason(model, inputs, [1, 2])
    with pytest.raises(TypeError, match="did you mean `lr`"):
        _vreason(model, inputs, {"lrr": 0.1})


# ------------------------------------------------------------------------------------------------- real model


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
