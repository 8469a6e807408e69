# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The app's engine room, free of Gradio: load the model once, answer one question about one video with plain
decoding and with V-Reason, token by token, with live entropy / EMA / α traces, and draw them.

Both answers come from the same decoding loop ([`vreason_generate`]): the plain one with `num_steps=0`, which is
token for token greedy decoding (a tested invariant of the loop), so both columns are traced the same way. The
plain column's α is the value the switching rule *would* take on the base model's entropies; nothing is optimised.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from ..configuration_vreason import VReasonConfig
from ..generation.loop import vreason_generate_kwargs
from ..inputs import build_inputs, is_multimodal

logger = logging.getLogger(__name__)

__all__ = ["Answer", "ModelSlot", "compare_answers", "plot_answers"]

_LABELS = {"base": "Plain decoding", "vreason": "V-Reason", "lite": "V-Reason Lite"}


class ModelSlot:
    r"""
    A model and its processor, loaded on first use (once, whichever visitor comes first) and shared by every
    request afterwards.

    A model that cannot be loaded is reported, not retried: every later [`get`] raises the same one-line
    `RuntimeError`, so a page shows why the app cannot answer while the server keeps running. Restart the app
    after fixing the cause.

    Args:
        name (`str`): what to call the model in messages (its Hub id or folder).
        loader (`Callable[[], tuple[PreTrainedModel, ProcessorMixin]]`): loads `(model, processor)`.
    """

    def __init__(self, name: str, loader: Callable[[], tuple[Any, Any]]) -> None:
        self.name = name
        self._loader = loader
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._error: str | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model is loaded (False while loading, before the first request and after a failure)."""
        return self._loaded is not None

    def get(self) -> tuple[Any, Any]:
        """`(model, processor)`; loads them on the first call. Raises `RuntimeError` if they cannot be loaded."""
        with self._lock:
            if self._loaded is None and self._error is None:
                self._load()
            if self._error is not None:
                raise RuntimeError(self._error)
            return self._loaded

    def _load(self) -> None:
        logger.info("Loading the model %s ...", self.name)
        try:
            model, processor = self._loader()
        except Exception as error:  # any failure: one line in the page and the log (traceback at debug level)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self._error = f"Cannot load the model {self.name!r}: {first}"
            logger.error(self._error)
            logger.debug("Traceback of the failed load of %s:", self.name, exc_info=error)
            return
        if not is_multimodal(processor) or getattr(processor, "video_processor", None) is None:
            self._error = (
                f"The model {self.name!r} is text-only (its processor takes no videos): start the app with a "
                f"video LMM, e.g. `vreason app --model Qwen/Qwen2.5-VL-3B-Instruct`."
            )
            logger.error(self._error)
            return
        self._loaded = (model, processor)
        logger.info("Loaded %s (%s on %s).", self.name, type(model).__name__, model.device)

    def preload(self) -> threading.Thread:
        """Start loading in a background thread (so the first visitor does not wait for it); returns the thread."""
        thread = threading.Thread(target=self._preload, name="vreason-app-load", daemon=True)
        thread.start()
        return thread

    def _preload(self) -> None:
        with contextlib.suppress(RuntimeError):  # already logged; the page reports it on every request
            self.get()


@dataclass
class Answer:
    r"""
    One column of the comparison as it decodes.

    Attributes:
        mode (`str`): `"base"` (plain decoding), `"vreason"` or `"lite"`.
        token_ids (`list[int]`): the tokens generated so far (the end-of-sequence token included).
        text (`str`): their text, special tokens removed.
        entropies, ema_entropies, alphas (`list[float]`): per token, as in [`VReasonGenerateOutput`].
        optimizer_steps (`int`): Adam steps taken so far (always 0 for plain decoding).
        seconds (`float`): time since this mode's `generate` started (prefill included); final once `done`.
        done (`bool`): whether this mode has finished.
    """

    mode: str
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    entropies: list[float] = field(default_factory=list)
    ema_entropies: list[float] = field(default_factory=list)
    alphas: list[float] = field(default_factory=list)
    optimizer_steps: int = 0
    seconds: float = 0.0
    done: bool = False

    @property
    def label(self) -> str:
        return _LABELS[self.mode]

    def record(self) -> dict[str, Any]:
        """The traces as an evaluation record, for [`~vreason_hf.eval.plots.plot_entropy_traces`]."""
        return {
            "dataset": "app",
            "mode": self.mode,
            "entropies": self.entropies,
            "ema_entropies": self.ema_entropies,
            "alphas": self.alphas,
        }


class _QueueStreamer:
    """Receives the loop's tokens and live traces (see `vreason_generate`'s `vreason_streamer`) into a queue."""

    def __init__(self, events: queue.Queue, mode: str) -> None:
        self.events, self.mode = events, mode
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # the first call is the prompt
            self._prompt_seen = True
            return
        self.events.put(("token", self.mode, int(value.reshape(-1)[0])))

    def put_traces(self, entropies, ema_entropies, alphas, optimizer_steps) -> None:
        self.events.put(
            (
                "traces",
                self.mode,
                (float(entropies[0]), float(ema_entropies[0]), float(alphas[0])),
                int(optimizer_steps[0]),
            )
        )

    def end(self) -> None:
        pass


class _StopWhenSet(StoppingCriteria):
    """Stops every row once `event` is set (the visitor left, or the request failed)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


def _check_request(
    video: str | Path | None, question: str | None, num_frames: int, max_new_tokens: int
) -> None:
    if video is None or not str(video).strip():
        raise ValueError("No video: upload a clip or pick one of the examples.")
    if question is None or not question.strip():
        raise ValueError("The question is empty: type a question about the video.")
    for name, value in (("frames", num_frames), ("max new tokens", max_new_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive whole number, got {value!r}.")


def compare_answers(
    model: Any,
    processor: Any,
    video: str | Path,
    question: str,
    *,
    vreason_config: VReasonConfig,
    num_frames: int = 16,
    max_new_tokens: int = 256,
    stop: threading.Event | None = None,
) -> Iterator[tuple[Answer, Answer]]:
    r"""
    Answer `question` about `video` with plain decoding, then with V-Reason, yielding both columns after every
    generated token.

    The plain answer runs first and then V-Reason, each alone, so each mode's seconds are its own (not shared with
    the other's). The yielded [`Answer`] objects are live: they keep changing after the next `next()`.

    Args:
        model (`PreTrainedModel`): a video LMM (e.g. Qwen2.5-VL).
        processor (`ProcessorMixin`): its processor.
        video (`str` or `Path`): a video file; `num_frames` frames are sampled uniformly (decord, PyAV fallback).
        question (`str`): the question.
        vreason_config (`VReasonConfig`): the V-Reason knobs (`lite=True` makes the second column V-Reason Lite).
            The plain column uses the same EMA knobs with `num_steps=0` and `lite=False`.
        num_frames (`int`, *optional*, defaults to 16): frames sampled from the video.
        max_new_tokens (`int`, *optional*, defaults to 256): at most this many new tokens per answer.
        stop (`threading.Event`, *optional*): set it to stop decoding early (checked after every token).

    Raises:
        `ValueError`: no video, an empty question, a bad count; `VideoDecodeError` (a `ValueError`) for a file that
            is not a readable video; anything the model raises while decoding.
    """
    _check_request(video, question, num_frames, max_new_tokens)
    inputs = build_inputs(processor, question.strip(), video=video, num_frames=num_frames)
    inputs = inputs.to(model.device, dtype=model.dtype)
    plain_config = VReasonConfig(**{**vreason_config.knobs(), "num_steps": 0, "lite": False})
    runs = [
        (Answer("base"), plain_config),
        (Answer("lite" if vreason_config.lite else "vreason"), vreason_config),
    ]
    tokenizer = getattr(processor, "tokenizer", processor)
    stop = stop if stop is not None else threading.Event()
    events: queue.Queue = queue.Queue()
    answers = {answer.mode: answer for answer, _ in runs}
    started: dict[str, float] = {}
    worker = threading.Thread(
        target=_decode_all,
        args=(model, inputs, runs, max_new_tokens, stop, events),
        name="vreason-app-decode",
        daemon=True,
    )
    worker.start()
    try:
        while (event := events.get())[0] != "exit":
            if event[0] == "error":
                raise event[1]
            if _apply_event(event, answers[event[1]], started, tokenizer):
                yield answers["base"], runs[1][0]
    finally:
        stop.set()  # the consumer stopped early (visitor left) or failed: let the worker finish quickly
        worker.join()


def _decode_all(
    model: Any,
    inputs: Any,
    runs: list[tuple[Answer, VReasonConfig]],
    max_new_tokens: int,
    stop: threading.Event,
    events: queue.Queue,
) -> None:
    """The decoding thread: run each mode in turn, putting its start, tokens, traces and end into `events`."""
    try:
        for answer, config in runs:
            if stop.is_set():
                break
            events.put(("start", answer.mode, time.perf_counter()))
            streamer = _QueueStreamer(events, answer.mode)
            out = model.generate(
                **inputs,
                **vreason_generate_kwargs(config, model=model, streamer=streamer),
                stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)]),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                return_dict_in_generate=True,
            )
            events.put(("done", answer.mode, time.perf_counter(), int(out.optimizer_steps[0])))
    except BaseException as error:  # handed to the consumer, which re-raises it in the request's thread
        events.put(("error", error))
    finally:
        events.put(("exit",))


def _apply_event(event: tuple, answer: Answer, started: dict[str, float], tokenizer: Any) -> bool:
    """Apply one event of the decoding thread to `answer`; return whether it is a new snapshot (a token, or done)."""
    kind = event[0]
    if kind == "start":
        started[answer.mode] = event[2]
        return False
    if kind == "traces":
        h, ema, alpha = event[2]
        answer.entropies.append(h)
        answer.ema_entropies.append(ema)
        answer.alphas.append(alpha)
        answer.optimizer_steps = event[3]
        return False
    if kind == "token":
        answer.token_ids.append(event[2])
        answer.text = tokenizer.decode(answer.token_ids, skip_special_tokens=True).strip()
        answer.seconds = time.perf_counter() - started[answer.mode]
    elif kind == "done":
        answer.seconds = event[2] - started[answer.mode]
        answer.optimizer_steps = event[3]
        answer.done = True
    return True


def plot_answers(
    answers: tuple[Answer, ...] | list[Answer], *, title: str | None = None
) -> np.ndarray | None:
    r"""
    Draw the answers' entropy, EMA (peak marked) and α traces in the style of `vreason plot` (same function).

    Returns:
        `np.ndarray` of shape `(height, width, 3)`, `uint8` (RGB), or `None` while no answer has a token yet.
    """
    from ..eval.plots import plot_entropy_traces

    records = [answer.record() for answer in answers if answer.entropies]
    if not records:
        return None
    figure, _ = plot_entropy_traces(
        records,
        min_samples=1,
        title=title or "Entropy of the next-token distribution, its EMA and α, per generated token",
    )
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
