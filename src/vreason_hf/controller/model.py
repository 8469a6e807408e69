# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`VReasonControllerModel`: the model-level half of the adapter (PEFT's `PeftModel` role).

It pairs a base model with a saved controller and keeps the bookkeeping: enabling / disabling it, saving it as
`controller_config.json` + `controller_model.safetensors` (never pickle), loading it from a folder or the Hub and
pushing it there.

A controller is saved from a finished generation (`VReasonGenerateOutput.controller_state`) together with the state
it started from, so it can be used three ways (`mode=`):

- `"replay"`: re-run V-Reason from the recorded start with the recorded knobs; on the same input this reproduces
  the generation token for token, and ends at the saved state;
- `"continue"`: run V-Reason starting from the saved state (warm start);
- `"static"`: apply the saved ΔV without optimising (a fixed adapter).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..generation.loop import VReasonGenerateOutput, vreason_generate
from ..generation.replay import resolve_decoder_parts
from .config import CONFIG_NAME, ControllerConfig
from .layer import ControllerLayer

__all__ = ["WEIGHTS_NAME", "VReasonControllerModel"]

WEIGHTS_NAME = "controller_model.safetensors"
_INITIAL = "initial."
_MODES = ("replay", "continue", "static")


def model_facts(model: Any) -> dict[str, Any]:
    """What identifies the model a controller fits: its text `model_type`, decoder layers, KV heads, head dim, vocab."""
    layers, _, lm_head, _ = resolve_decoder_parts(model)
    text = model.config.get_text_config(decoder=True)
    heads = getattr(text, "num_attention_heads", None)
    head_dim = getattr(text, "head_dim", None)
    if head_dim is None and heads:
        head_dim = text.hidden_size // heads
    return {
        "model_type": getattr(text, "model_type", None) or None,
        "num_hidden_layers": len(layers),
        "num_key_value_heads": getattr(text, "num_key_value_heads", None) or heads,
        "head_dim": head_dim,
        "vocab_size": int(lm_head.weight.shape[0]),
    }


def _check_model(model: Any, config: ControllerConfig) -> None:
    """Refuse a controller saved from another model (the facts `config` recorded; older files record fewer)."""
    facts = model_facts(model)
    differ = [
        f"{name} {getattr(config, name)!r} (this model: {facts[name]!r})"
        for name in facts
        if getattr(config, name) is not None
        and facts[name] is not None
        and getattr(config, name) != facts[name]
    ]
    if differ:
        saved_from = config.base_model_name_or_path or "another model"
        raise ValueError(
            f"This controller was saved from {saved_from} and does not fit `{type(model).__name__}`: "
            f"{'; '.join(differ)}. A controller only applies to the model it was made on."
        )


class VReasonControllerModel:
    r"""
    A base model plus a saved V-Reason controller.

    Args:
        model (`PreTrainedModel`): the base model (not modified).
        config (`ControllerConfig`): shapes and knobs.
        state (`dict[str, torch.Tensor]`): the saved (final) controller state.
        initial_state (`dict[str, torch.Tensor]`, *optional*): the state the generation started from (zeros when
            omitted, which is how V-Reason starts).
    """

    def __init__(
        self,
        model: Any,
        config: ControllerConfig,
        state: dict[str, torch.Tensor],
        initial_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.config = config
        _check_model(model, config)
        self.layer = ControllerLayer(config, state)
        if initial_state is None:
            initial_state = {
                k: (torch.zeros_like(v) if k in ("theta", "exp_avg", "exp_avg_sq", "steps") else v)
                for k, v in self.layer.state().items()
            }
        self.initial = ControllerLayer(config, initial_state)
        self._enabled = True

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_generation(
        cls,
        model: Any,
        output: VReasonGenerateOutput,
        vreason_config: Any,
        *,
        initial_state: dict[str, torch.Tensor] | None = None,
    ) -> VReasonControllerModel:
        """Wrap the controller a `generate(..., custom_generate=vreason_generate, return_dict_in_generate=True)`
        call ended with (`output.controller_state`), made with `vreason_config`."""
        from ..generation.engine import as_vreason_config

        state = output.controller_state
        if not state:
            raise ValueError(
                "`output.controller_state` is empty: generate with `custom_generate=vreason_generate` and "
                "`return_dict_in_generate=True`."
            )
        batch, heads, rows, head_dim = state["theta"].shape
        facts = model_facts(model)
        config = ControllerConfig(
            num_key_value_heads=heads,
            head_dim=head_dim,
            num_rows=rows,
            batch_size=batch,
            vreason=as_vreason_config(vreason_config).knobs(),
            base_model_name_or_path=getattr(model, "name_or_path", None) or None,
            model_type=facts["model_type"],
            num_hidden_layers=facts["num_hidden_layers"],
            vocab_size=facts["vocab_size"],
        )
        return cls(model, config, state, initial_state)

    # ------------------------------------------------------------------ enable / disable
    @property
    def active(self) -> bool:
        return self._enabled

    def enable_adapter(self) -> None:
        self._enabled = True

    def disable_adapter_layers(self) -> None:
        self._enabled = False

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Like `PeftModel.disable_adapter()`: inside the block, `generate` is the base model's plain decoding."""
        previous = self._enabled
        self._enabled = False
        try:
            yield
        finally:
            self._enabled = previous

    # ------------------------------------------------------------------ use
    def generate(self, *args: Any, mode: str = "replay", **kwargs: Any) -> Any:
        r"""
        Generate with the controller.

        Args:
            mode (`str`, *optional*, defaults to `"replay"`): `"replay"`, `"continue"` or `"static"` (see the module
                docstring). Ignored inside [`disable_adapter`].
            *args, **kwargs: the base model's `generate` arguments.
        """
        if not self._enabled:
            return self.model.generate(*args, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {', '.join(map(repr, _MODES))}, got {mode!r}.")
        knobs = self.config.vreason_config().knobs()
        if mode == "static":
            knobs["num_steps"] = 0
        state = self.initial.state() if mode == "replay" else self.layer.state()
        return self.model.generate(
            *args,
            custom_generate=vreason_generate,
            vreason_config=knobs,
            vreason_initial_state=state,
            **kwargs,
        )

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write `controller_config.json` and `controller_model.safetensors` to `save_directory`."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(directory)
        # clone(): the two states share their row-index tensors, and safetensors refuses shared storage.
        tensors = {k: v.detach().cpu().clone() for k, v in self.layer.state().items()}
        tensors.update({_INITIAL + k: v.detach().cpu().clone() for k, v in self.initial.state().items()})
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "library": "vreason_hf"})
        return directory

    @classmethod
    def from_pretrained(
        cls,
        model: Any,
        pretrained: str | Path,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
    ) -> VReasonControllerModel:
        r"""
        Load a controller saved with [`save_pretrained`] from a local folder or a Hub repo id.

        Raises:
            `FileNotFoundError`: a local folder lacks one of the two files.
        """
        directory = Path(pretrained)
        if directory.is_dir():
            paths = {name: directory / name for name in (CONFIG_NAME, WEIGHTS_NAME)}
            missing = [name for name, path in paths.items() if not path.is_file()]
            if missing:
                raise FileNotFoundError(
                    f"`{directory}` has no {' or '.join(missing)}; save a controller with "
                    f"`VReasonControllerModel.save_pretrained`."
                )
        else:
            from huggingface_hub import hf_hub_download

            paths = {
                name: Path(hf_hub_download(str(pretrained), name, revision=revision, token=token))
                for name in (CONFIG_NAME, WEIGHTS_NAME)
            }
        config = ControllerConfig.from_json_file(paths[CONFIG_NAME])
        tensors = load_file(str(paths[WEIGHTS_NAME]))
        state = {k: v for k, v in tensors.items() if not k.startswith(_INITIAL)}
        initial = {k[len(_INITIAL) :]: v for k, v in tensors.items() if k.startswith(_INITIAL)} or None
        device = next(model.parameters()).device
        state = {k: v.to(device) for k, v in state.items()}
        initial = None if initial is None else {k: v.to(device) for k, v in initial.items()}
        return cls(model, config, state, initial)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        commit_message: str = "Upload V-Reason controller",
    ) -> Any:
        """Save to a temporary folder and upload it to `repo_id` with `huggingface_hub`."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
