# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""V-Reason as a `LogitsProcessor`, for composing with plain `generate`, pipelines and other recipes, and the LM-head
hook that hands it (and plain decoding's entropy traces) the raw next-token logits."""

from __future__ import annotations

import threading
from typing import Any

import torch
from transformers import LogitsProcessor

from ..configuration_vreason import VReasonConfig
from .autograd import outside_inference_mode
from .engine import VReasonEngine, as_vreason_config
from .objective import entropy
from .replay import LastLayerReplay

__all__ = ["RawLogitsRecorder", "VReasonLogitsProcessor"]


class RawLogitsRecorder:
    r"""
    A forward hook on a model's LM head that keeps the raw next-token logits of every forward, per thread.

    Logits processors only see scores after the processors before them; this hook sees what the LM head returned
    (the last position, before any processor). Each thread reads only what its own forwards recorded, so threads
    decoding with the same model at the same time never see each other's logits.

    Args:
        head (`nn.Module`): the LM head (`model.get_output_embeddings()`).
        entropies (`bool`, *optional*, defaults to `False`): also record the entropy of every forward's
            next-token distribution (see [`entropies`]); left on the device, so recording costs no sync.
    """

    def __init__(self, head: torch.nn.Module, *, entropies: bool = False) -> None:
        self._entropies = entropies
        self._local = threading.local()
        self._handle = head.register_forward_hook(self._record)

    def _record(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        logits = (output[:, -1] if output.dim() == 3 else output).detach()  # (batch, vocab)
        self._local.logits = logits
        if self._entropies:
            if not hasattr(self._local, "entropies"):
                self._local.entropies = []
            with torch.no_grad():
                self._local.entropies.append(entropy(logits))  # (batch,)

    @property
    def logits(self) -> torch.Tensor | None:
        """The calling thread's last raw next-token logits, `(batch, vocab_size)`, or `None` before any forward."""
        return getattr(self._local, "logits", None)

    def entropies(self) -> torch.Tensor | None:
        """The calling thread's recorded entropies, `(batch, forwards)` (float32), or `None` if none were recorded."""
        values = getattr(self._local, "entropies", None)
        return torch.stack(values, dim=1) if values else None

    def remove(self) -> None:
        """Remove the hook and forget what was recorded."""
        self._handle.remove()
        self._local = threading.local()


class VReasonLogitsProcessor(LogitsProcessor):
    r"""
    V-Reason through `model.generate(..., logits_processor=[VReasonLogitsProcessor(model, config)])`.

    It shares the controller, replay and objective of [`vreason_generate`] and gives the same tokens for greedy
    decoding. Differences from the `custom_generate` form:

    - it cannot fuse the first optimiser step into the real forward (plain `generate` runs under `no_grad`), so
      each update costs one extra last-layer pass;
    - it takes the raw logits from a hook on the LM head, so processors placed *before* it in the list do not
      change the entropy it optimises; after an update it returns `scores + (updated − raw)`, which equals the
      updated logits when it is the first processor;
    - V-Reason Lite is not available (pruning must rewrite generate's attention mask, which a processor cannot
      reach): use `custom_generate=vreason_generate` for `lite=True`.

    Hooks are installed on the model when the processor is created; call [`close`] or use it as a context manager
    to remove them. One processor can serve several `generate` calls, one at a time: a new cache starts a new
    controller. Its hooks keep each thread's forwards apart, so other threads may decode with the same model
    meanwhile (plainly, with V-Reason, or with processors of their own), and the processor may be created in
    another thread than the one that runs `generate`; two `generate` calls at once need two processors.

    Args:
        model (`PreTrainedModel`): the model that will call `generate`.
        vreason_config (`VReasonConfig` or `dict`, *optional*): the knobs (defaults to `VReasonConfig()`).
    """

    def __init__(self, model: Any, vreason_config: VReasonConfig | dict[str, Any] | None = None) -> None:
        self.config = as_vreason_config(vreason_config)
        if self.config.lite:
            raise ValueError(
                "VReasonLogitsProcessor does not support `lite=True`: Lite rewrites generate's attention mask, which "
                "a logits processor cannot reach. Use `model.generate(..., custom_generate=vreason_generate)`."
            )
        self.model = model
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self._eos = torch.tensor(eos, dtype=torch.long)
        self._pad = model.generation_config.pad_token_id
        # `any_thread`: the processor may be built in one thread and used by generate in another; each thread's
        # forwards are recorded apart, so a concurrent generate in another thread is never taken for this one.
        self.replay = LastLayerReplay(model, self.config.target_layer, any_thread=True)
        self._raw = RawLogitsRecorder(self.replay.lm_head)
        self.engine: VReasonEngine | None = None
        self._cache: Any = None
        self._unfinished: torch.Tensor | None = None

    def _start(self, input_ids: torch.Tensor, raw: torch.Tensor) -> None:
        if self.engine is not None:
            self.engine.close()
        mask = None
        if self._pad is not None and self.config.controller_scope == "prompt":
            mask = (input_ids != self._pad).long().cummax(-1).values  # 0 only on left padding
        self.engine = VReasonEngine(
            self.model, self.config, input_ids, mask, replay=self.replay, freeze="replay"
        )
        self._cache = self.replay.cache
        self.engine.attach(self._cache, raw)  # no initial state here, so token 0's logits stay `raw`
        self._unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    @outside_inference_mode  # V-Reason needs autograd, also when generate runs under torch.inference_mode()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raw = self._raw.logits
        if raw is None or self.replay.cache is None:
            raise RuntimeError(
                "VReasonLogitsProcessor saw no forward pass of its model; was it built for this model?"
            )
        raw = raw.float()
        if self.engine is None or self.replay.cache is not self._cache:
            self._start(input_ids, raw)
        else:
            last = input_ids[:, -1]
            self._unfinished &= ~torch.isin(last, self._eos.to(last.device))
        update = self.engine.update_due
        decode = self.engine.step(raw, self._unfinished)
        if not update or not self.config.decode_after_update:
            return scores
        if torch.equal(scores, raw):
            return decode
        return scores + (decode - raw)

    def traces(self) -> dict[str, torch.Tensor]:
        """The last generation's traces (see [`VReasonGenerateOutput`]) plus `optimizer_steps`."""
        if self.engine is None:
            raise RuntimeError("No generation has run through this VReasonLogitsProcessor yet.")
        return {**self.engine.stacked_traces(), "optimizer_steps": self.engine.optimizer_steps}

    def close(self) -> None:
        """Remove the hooks from the model and release the last generation's controller."""
        self._raw.remove()
        self.replay.remove()
        self._cache = None
        if self.engine is not None:
            self.engine.close()

    def __enter__(self) -> VReasonLogitsProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
