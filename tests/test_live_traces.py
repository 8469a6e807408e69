"""The decoding loop's optional live traces: a `vreason_streamer` with `put_traces` sees every token's traces."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.streamers import BaseStreamer

from vreason_hf import vreason_generate

QUESTION = "What is happening in this video?"


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
