"""`VReasonLogitsProcessor` (`vreason_hf.generation.logits_process`): the same tokens as the callable, also under
`torch.inference_mode()`, hooks removed afterwards, Lite refused."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from vreason_hf import VReasonConfig, VReasonLogitsProcessor
from vreason_hf.testing import greedy_vreason

MAX_NEW = 24
KNOBS = {"lr": 0.3, "update_every": 1}


def _greedy(model, inputs, **kwargs):
    return model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, **kwargs)


_vreason = partial(greedy_vreason, max_new_tokens=MAX_NEW)


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


def test_the_logits_processor_works_under_inference_mode(qwen):
    model, _, inputs = qwen
    expected = _vreason(model, inputs, KNOBS)
    with VReasonLogitsProcessor(model, KNOBS) as processor, torch.inference_mode():
        got = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, logits_processor=[processor])
    assert torch.equal(got, expected)
