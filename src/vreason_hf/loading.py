# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Loading a model and its processor by Hub id, local folder or named model, for the `vreason` command.

- A local folder wins; then the named models of [`~vreason_hf.assets.NAMED_MODELS`] (built offline on first
  use); anything else is a Hub id.
- A Hub id is checked up front: unless `HF_HUB_OFFLINE=1` is set, a 2 s connection to the Hub endpoint
  (`HF_ENDPOINT`) tells whether the Hub is reachable. When it is not, the model loads from its snapshot folder in
  the local Hugging Face cache (as a local folder, so nothing tries the network), or the load fails at once with a
  message naming the model and the fixes, instead of spending a minute in download retries.
- Loading shows one progress bar of our own (on a terminal). While third-party progress bars are disabled (the
  command's default, see `transformers.utils.logging.disable_progress_bar`), transformers' "Loading weights" bar
  drives ours and the GGUF dequantisation bar of a first use is hidden.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ._registration import register_with_transformers
from .assets import NAMED_MODELS, named_model_path

logger = logging.getLogger(__name__)

__all__ = [
    "HUB_TIMEOUT_S",
    "auto_model_class",
    "hub_reachable",
    "load_model",
    "resolve_device",
    "resolve_model",
]

HUB_TIMEOUT_S = 2.0
"""Seconds the up-front check waits for a TCP connection to the Hub endpoint."""

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_DTYPES = ("auto", "float32", "bfloat16", "float16")
# Share of the progress bar per loading stage (the weights dominate).
_STAGES = {"config": 5, "weights": 80, "processor": 10, "device": 5}


def hub_reachable(endpoint: str | None = None, timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within `timeout` seconds (name resolution included).

    Args:
        endpoint (`str`, *optional*):
            The endpoint URL; defaults to `huggingface_hub.constants.ENDPOINT` (which honours `HF_ENDPOINT`).
        timeout (`float`, *optional*, defaults to 2.0):
            Seconds to wait in all.
    """
    if endpoint is None:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = urlparse(endpoint)
    if not url.hostname:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    # A thread bounds name resolution too, which `create_connection`'s timeout does not cover.
    thread = threading.Thread(target=connect, daemon=True, name="vreason-hub-check")
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def _named_list() -> str:
    return ", ".join(NAMED_MODELS)


def _cached_snapshot(model_id: str) -> str | None:
    """The folder of `model_id`'s snapshot in the local Hugging Face cache, found without any network call."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(model_id, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def resolve_model(model_id: str) -> str:
    """Where to load `model_id` from.

    Returns:
        `str`: the absolute path of a local folder; the name of a named model (built by [`load_model`]); the
        model's snapshot folder in the local Hugging Face cache when the Hub is not reachable; else the Hub id.

    Raises:
        `FileNotFoundError`: if `model_id` looks like a path but no such folder exists, or `HF_HUB_OFFLINE=1` is
            set and the model is not in the local cache.
        `ConnectionError`: if `model_id` is a Hub id, the Hub is not reachable and the model is not cached.
    """
    local = Path(model_id).expanduser()
    if local.is_dir():
        return str(local.resolve())
    if model_id in NAMED_MODELS:
        return model_id
    if local.exists() or model_id.startswith((".", "/", "~")) or model_id.count("/") > 1:
        raise FileNotFoundError(
            f"Model folder not found: '{model_id}' (pass a local folder, a Hub id or a named model: "
            f"{_named_list()})."
        )
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        if _cached_snapshot(model_id) is None:
            raise FileNotFoundError(
                f"Cannot load model '{model_id}': it is not a local folder or a named model ({_named_list()}), "
                "and HF_HUB_OFFLINE=1 is set but it is not in the local Hugging Face cache. Pass a local folder "
                "or a named model, or download it with network access (unset HF_HUB_OFFLINE)."
            )
        return model_id
    # Behind a proxy a direct connection says nothing about reachability: leave it to huggingface_hub.
    if any(os.environ.get(name) for name in _PROXY_VARIABLES) or hub_reachable():
        return model_id
    snapshot = _cached_snapshot(model_id)
    if snapshot is not None:
        logger.warning(
            "The Hugging Face Hub (%s) is not reachable: loading '%s' from the local cache.",
            constants.ENDPOINT,
            model_id,
        )
        return snapshot
    raise ConnectionError(
        f"Cannot download model '{model_id}': the Hugging Face Hub ({constants.ENDPOINT}) is not reachable (no "
        f"connection within {HUB_TIMEOUT_S:g} s) and the model is not in the local cache. Pass a local folder or a "
        f"named model ({_named_list()}), or set HF_HUB_OFFLINE=1 to use only the local cache."
    )


def auto_model_class(config: Any) -> type:
    """The Auto class that loads a model able to generate from `config`: the one rule every surface uses.

    `AutoModelForImageTextToText` for a vision-language model (its model type is in that class's mapping, or its
    config has a `vision_config` or a video token id), else `AutoModelForCausalLM`. Never `AutoModel`: in
    transformers 5.24 it maps video LMMs to their head-less backbone (e.g. `Qwen2_5_VLModel`), which cannot generate.

    Args:
        config (`PretrainedConfig` or `dict`): the model's config, or its `config.json` as a dict.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    def field(name: str) -> Any:
        return config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)

    vision = field("model_type") in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or any(
        field(name) is not None for name in ("vision_config", "video_token_id", "video_token_index")
    )
    return AutoModelForImageTextToText if vision else AutoModelForCausalLM


def resolve_device(device: str) -> str:
    """`"auto"` becomes the launcher's GPU (`LOCAL_RANK`), else `cuda:0`, else `cpu`; a CUDA device needs a GPU."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"`--device {device}` was given, but no CUDA GPU is available; use `--device cpu`."
            )
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0') or 0)}"
    return "cpu"


class _Bar:
    """Our one loading bar: percent of the stages done; transformers' tqdm bars advance it while hidden."""

    def __init__(self, description: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm(
            total=100,
            desc=description,
            disable=None if enabled else True,  # None: shown on a terminal only
            file=sys.stderr,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]",
        )

    def stage(self, name: str, done: float) -> None:
        """Jump to `done` percent and name the current stage."""
        self.tqdm.set_postfix_str(name, refresh=False)
        self.tqdm.update(max(0.0, done - self.tqdm.n))

    def close(self) -> None:
        self.tqdm.close()


class _Forward:
    """Stands in for one transformers tqdm bar and moves our bar by `share` percent over its course."""

    def __init__(self, bar: _Bar, share: float, args: tuple, kwargs: dict) -> None:
        self.bar, self.share = bar, share
        self.iterable = args[0] if args else kwargs.get("iterable")
        total = kwargs.get("total")
        if total is None and self.iterable is not None and hasattr(self.iterable, "__len__"):
            total = len(self.iterable)
        self.step = share / total if total else 0.0
        self.start = bar.tqdm.n

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def update(self, n: float = 1) -> None:
        if self.bar.tqdm.n + self.step * n <= self.start + self.share:
            self.bar.tqdm.update(self.step * n)

    def __enter__(self) -> _Forward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # set_description, set_postfix, refresh, ...: no-ops
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def _third_party_bars_into(bar: _Bar, share: float) -> Iterator[None]:
    """While transformers' own bars are disabled, let them advance our bar instead (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    if hf_logging.is_progress_bar_enabled():
        yield
        return

    def hook(factory: Any, args: tuple, kwargs: dict) -> Any:
        return _Forward(bar, share, args, kwargs)

    previous = hf_logging.set_tqdm_hook(hook)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)


@contextlib.contextmanager
def _hide_stderr_unless_verbose() -> Iterator[None]:
    """Hide what third-party code writes to `sys.stderr` (the GGUF dequantisation bar) while bars are disabled.

    `sys.stderr` is process-wide: this is used only around a named model's first-use build.
    """
    from transformers.utils import logging as hf_logging

    if hf_logging.is_progress_bar_enabled():
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def load_model(
    model_id: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> tuple[Any, Any]:
    """Load a vision-language model with its processor, or a causal LM with its tokenizer, in eval mode.

    Args:
        model_id (`str`):
            A local folder, a named model (see [`~vreason_hf.assets.NAMED_MODELS`]) or a Hub id.
        device (`str`, *optional*, defaults to `"auto"`):
            See [`resolve_device`]; ignored with `device_map`.
        dtype (`str`, *optional*, defaults to `"auto"`):
            `"auto"` (the checkpoint's), `"float32"`, `"bfloat16"` or `"float16"`.
        device_map (`str`, *optional*):
            Passed to `from_pretrained` (e.g. `"auto"`).
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Passed to `from_pretrained`.
        progress (`bool`, *optional*, defaults to `True`):
            Show the loading bar (on a terminal).

    Returns:
        `tuple`: the model and its processor (or tokenizer).

    Raises:
        `ValueError`: bad `dtype` or `device`.
        `FileNotFoundError`: no such folder; a model that cannot be loaded (first line of the cause).
        `ConnectionError`: see [`resolve_model`].
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    register_with_transformers()  # `import vreason_hf` does not when the `vreason` console script imports it
    if dtype not in _DTYPES:
        raise ValueError(f"`--dtype` must be one of {', '.join(_DTYPES)}, got {dtype!r}.")
    if device_map is None:
        device = resolve_device(device)  # fail on a bad device before loading the weights
    source = resolve_model(model_id)
    bar = _Bar(f"Loading {model_id}", progress)
    try:
        if source in NAMED_MODELS:
            with _hide_stderr_unless_verbose(), _third_party_bars_into(bar, 0):
                source = str(named_model_path(model_id, on_build=lambda what: bar.stage(what, 0)))
        bar.stage("config", 0)
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        except OSError as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise FileNotFoundError(f"Cannot load model {model_id!r}: {first}") from error
        model_class = auto_model_class(config)
        multimodal = model_class is AutoModelForImageTextToText
        kwargs = _weights_kwargs(dtype, device_map, trust_remote_code)
        bar.stage("weights", _STAGES["config"])
        with _third_party_bars_into(bar, _STAGES["weights"]):
            model = model_class.from_pretrained(source, **kwargs)
        bar.stage("processor", _STAGES["config"] + _STAGES["weights"])
        loader = AutoProcessor if multimodal else AutoTokenizer
        processor = loader.from_pretrained(source, trust_remote_code=trust_remote_code)
        bar.stage("device", 100 - _STAGES["device"])
        if device_map is None:
            model = model.to(device)
        model.eval()
        bar.stage("done", 100)
    finally:
        bar.close()
    return model, processor


def _weights_kwargs(dtype: str, device_map: str | None, trust_remote_code: bool) -> dict[str, Any]:
    """The model's `from_pretrained` arguments, with a warning for `device_map` under a multi-process launch."""
    import torch

    kwargs: dict[str, Any] = {
        "dtype": "auto" if dtype == "auto" else getattr(torch, dtype),
        "trust_remote_code": trust_remote_code,
    }
    if device_map is not None:
        kwargs["device_map"] = device_map
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            logger.warning(
                "`--device-map %s` under a multi-process launch: every process spreads its own copy of the "
                "model over all visible GPUs. Use it with one process (or restrict CUDA_VISIBLE_DEVICES per "
                "process).",
                device_map,
            )
    return kwargs
