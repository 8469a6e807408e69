"""The cross-module "concurrent equals solo" invariant, which the README cites: several generations at once on one
model (threads of a server) each get the tokens they get alone, and the model comes back exactly as it was.

Covered: the `custom_generate` callable beside plain `generate`, logits processors beside both, the pipeline shared
by threads; and the state they share per process: last-layer replay and raw-logits recorders (each thread records
its own forwards), frozen `requires_grad` flags and the SDPA backend selection (restored after overlapping use).
Each module's own behaviour is tested in its own file (tests/test_loop.py, tests/test_replay.py, ...)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from transformers import pipeline

from vreason_hf import VReasonLogitsProcessor, vreason_generate
from vreason_hf.generation import RawLogitsRecorder, entropy
from vreason_hf.generation.replay import LastLayerReplay
from vreason_hf.pipelines import TASK
from vreason_hf.testing import build_tiny_qwen2_5_vl, model_fingerprint

NEW_TOKENS = 12
ROUNDS = 3
# Strong enough that V-Reason changes the tiny model's tokens: "equal to solo" is not "equal to greedy".
KNOBS = {"lr": 0.3, "update_every": 1}
QUESTIONS = ("What is happening?", "Describe the bikes in detail, please.", "Why?")


@pytest.fixture(scope="module")
def setup(video_inputs, real_clip):
    """A private tiny Qwen2.5-VL whose parameters have mixed `requires_grad` flags, and three prompts."""
    model, processor = build_tiny_qwen2_5_vl()
    model.get_decoder().layers[0].requires_grad_(False)  # the flags must come back exactly, not all True
    return model, processor, [video_inputs(processor, real_clip, q) for q in QUESTIONS]


def _hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_pre_hooks) + len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def _together(jobs: list[Callable[[], Any]], rounds: int = ROUNDS) -> list[list[Any]]:
    """Run the jobs in threads released together by a barrier, `rounds` times; re-raises a job's error."""
    results = []
    for _ in range(rounds):
        barrier = threading.Barrier(len(jobs))
        out: list[Any] = [None] * len(jobs)

        def work(i: int, barrier: threading.Barrier = barrier, out: list[Any] = out) -> None:
            barrier.wait()
            try:
                out[i] = jobs[i]()
            except BaseException as error:  # handed to the main thread
                out[i] = error

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for value in out:
            if isinstance(value, BaseException):
                raise value
        results.append(out)
    return results


def _plain(model, inputs):
    return model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)


def _callable(model, inputs, knobs=KNOBS):
    return model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=knobs,
    )


def _processor(model, inputs, processor=None):
    if processor is not None:  # built in another thread than the one that runs generate
        return model.generate(
            **inputs, max_new_tokens=NEW_TOKENS, do_sample=False, logits_processor=[processor]
        )
    with VReasonLogitsProcessor(model, KNOBS) as own:
        return model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, logits_processor=[own])


def test_callable_and_plain_generations_at_once_equal_their_solo_runs(setup):
    model, _, inputs = setup
    before = model_fingerprint(model)
    jobs = [
        lambda: _callable(model, inputs[0]),
        lambda: _callable(model, inputs[1], {**KNOBS, "lite": True}),
        lambda: _plain(model, inputs[2]),
        lambda: _callable(model, inputs[2], {"lr": 0.1, "update_every": 3}),
    ]
    solo = [job() for job in jobs]
    assert not torch.equal(solo[0], _plain(model, inputs[0]))  # V-Reason really changes the tokens
    for together in _together(jobs):
        for got, want in zip(together, solo, strict=True):
            assert torch.equal(got, want)
    assert _hooks(model) == 0
    assert model_fingerprint(model) == before  # weights hash-identical, every requires_grad flag as before


def test_logits_processors_beside_the_callable_and_plain_generate(setup):
    model, _, inputs = setup
    before = model_fingerprint(model)
    shared = VReasonLogitsProcessor(model, KNOBS)  # built here, used by a worker thread
    try:
        jobs = [
            lambda: _processor(model, inputs[0]),
            lambda: _processor(model, inputs[1], shared),
            lambda: _callable(model, inputs[2]),
            lambda: _plain(model, inputs[0]),
        ]
        solo = [job() for job in jobs]
        assert torch.equal(
            solo[0], _callable(model, inputs[0])
        )  # the processor form is the callable's tokens
        for together in _together(jobs):
            for got, want in zip(together, solo, strict=True):
                assert torch.equal(got, want)
    finally:
        shared.close()
    assert _hooks(model) == 0
    assert model_fingerprint(model) == before


def test_pipeline_shared_by_threads(setup, real_clip):
    model, processor, _ = setup
    before = model_fingerprint(model)
    pipe = pipeline(TASK, model=model, processor=processor)
    common = {"num_frames": 8, "max_new_tokens": NEW_TOKENS, "return_traces": True}
    jobs = [
        # One input gives a list of one answer (the image-text-to-text convention).
        lambda: pipe(real_clip, text=QUESTIONS[0], vreason=KNOBS, **common)[0],
        lambda: pipe(real_clip, text=QUESTIONS[1], vreason={"lr": 0.1}, **common)[0],
        lambda: pipe(real_clip, text=QUESTIONS[2], vreason=False, num_frames=8, max_new_tokens=NEW_TOKENS)[0],
    ]
    solo = [job() for job in jobs]
    for together in _together(jobs):
        for got, want in zip(together, solo, strict=True):
            assert got.keys() == want.keys()
            assert got["generated_text"] == want["generated_text"]
            assert got.get("optimizer_steps") == want.get("optimizer_steps")
            for trace in ("entropies", "ema_entropies", "alphas"):
                if trace in want:
                    np.testing.assert_allclose(got[trace], want[trace], rtol=1e-4, atol=1e-5)
    assert _hooks(model) == 0
    assert model_fingerprint(model) == before


def test_a_replay_records_only_its_own_threads_forwards(setup):
    model, _, inputs = setup
    for any_thread in (False, True):
        with LastLayerReplay(model, **({"any_thread": True} if any_thread else {})) as replay:
            worker = threading.Thread(target=_plain, args=(model, inputs[0]))  # another thread's generation
            worker.start()
            worker.join()
            assert replay.hidden is None and replay.cache is None  # nothing recorded for this thread
            _plain(model, inputs[1])
            assert replay.hidden is not None  # its own forwards are


def test_a_raw_logits_recorder_shared_by_threads_keeps_each_threads_own_logits(setup):
    model, _, inputs = setup

    def plain(recorder: RawLogitsRecorder, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        out = model.generate(
            **x, max_new_tokens=NEW_TOKENS, do_sample=False, return_dict_in_generate=True, output_logits=True
        )
        # What the head recorded for this thread = the raw logits generate returns (before any processor).
        return recorder.entropies(), entropy(torch.stack(out.logits, dim=1))

    recorder = RawLogitsRecorder(model.get_output_embeddings(), entropies=True)
    try:
        (together,) = _together([lambda x=x: plain(recorder, x) for x in inputs], rounds=1)
    finally:
        recorder.remove()
    for recorded, expected in together:
        torch.testing.assert_close(recorded, expected)
    assert _hooks(model) == 0


def test_overlapping_freezes_restore_each_parameters_original_flag():
    from vreason_hf.generation.autograd import FROZEN_PARAMETERS as frozen

    params = [torch.nn.Parameter(torch.zeros(1), requires_grad=flag) for flag in (True, False, True)]
    first = frozen.freeze(params)  # A
    second = frozen.freeze(params[1:])  # B starts while A runs (it sees A's False)
    assert not any(p.requires_grad for p in params)
    frozen.release(first)  # A ends first: B still needs its parameters frozen
    assert params[0].requires_grad and not params[1].requires_grad and not params[2].requires_grad
    frozen.release(second)  # B ends: the original flags, not the False B saw
    assert [p.requires_grad for p in params] == [True, False, True]


def test_the_process_wide_sdpa_selection_is_restored_after_overlapping_updates():
    from vreason_hf.generation.replay import _GRAD_SDPA

    def flags() -> tuple[bool, ...]:
        backends = torch.backends.cuda
        return (
            backends.cudnn_sdp_enabled(),
            backends.flash_sdp_enabled(),
            backends.mem_efficient_sdp_enabled(),
            backends.math_sdp_enabled(),
        )

    original = flags()
    _GRAD_SDPA.acquire()  # generation A's last layer under grad
    _GRAD_SDPA.acquire()  # generation B's, overlapping
    assert not flags()[0]  # cuDNN attention is off while either runs
    _GRAD_SDPA.release()  # A ends first, in entry order: the flags stay restricted for B ...
    assert not flags()[0]
    _GRAD_SDPA.release()  # ... and come back, exactly, when B ends too
    assert flags() == original
