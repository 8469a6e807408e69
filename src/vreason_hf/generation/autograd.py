# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Autograd scoping for V-Reason generations on a shared model.

V-Reason needs gradients with respect to its controller only, inside `generate`, which runs under `no_grad` (and
sometimes `inference_mode`), while other threads may decode with the same model. Two helpers keep that honest:
[`FROZEN_PARAMETERS`] sets `requires_grad=False` on the model's parameters for as long as any generation needs it
(reference-counted, process-wide, so the flags a user set come back when the last generation ends), and
[`outside_inference_mode`] lets a decoding function build autograd graphs under `torch.inference_mode()`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["FROZEN_PARAMETERS", "outside_inference_mode"]


class _FrozenParameters:
    """
    `requires_grad=False` on parameters while at least one generation needs it, process-wide.

    Each parameter's original flag is saved by the first generation that freezes it and restored by the last one
    that releases it, under one lock, so overlapping generations (threads) never save each other's `False`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, list[Any]] = {}  # id(parameter) -> [parameter, original flag, users]

    def freeze(self, parameters: Iterable[nn.Parameter]) -> list[nn.Parameter]:
        """Freeze `parameters`; returns them, to be handed back to [`release`]."""
        frozen = list(parameters)
        with self._lock:
            for p in frozen:
                entry = self._held.get(id(p))
                if entry is None:
                    self._held[id(p)] = [p, p.requires_grad, 1]
                    p.requires_grad_(False)
                else:
                    entry[2] += 1
        return frozen

    def release(self, parameters: list[nn.Parameter]) -> None:
        with self._lock:
            for p in parameters:
                entry = self._held[id(p)]
                entry[2] -= 1
                if entry[2] == 0:
                    del self._held[id(p)]
                    p.requires_grad_(entry[1])


FROZEN_PARAMETERS = _FrozenParameters()
"""The process-wide freezer every V-Reason generation uses."""


def outside_inference_mode(function: Callable[..., Any]) -> Callable[..., Any]:
    """
    Run `function` outside `torch.inference_mode()` (grad stays off), since V-Reason needs autograd for its
    controller; a no-op outside inference mode.

    The tensors generate prepared under inference mode are only read, never modified in place, so they can be used
    as they are (the replay copies those that autograd must save); what the function returns are ordinary tensors.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_inference_mode_enabled():
            return function(*args, **kwargs)
        with torch.inference_mode(False), torch.no_grad():  # leaving inference mode turns grad on: off again
            return function(*args, **kwargs)

    return wrapper
