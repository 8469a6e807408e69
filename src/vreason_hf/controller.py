# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The V-Reason controller of a finished generation as a saved adapter: [`ControllerConfig`] (what it is) and
[`VReasonControllerModel`] (a base model plus the saved controller: generate with it, save, load, push).

A controller is saved from a generation (`VReasonGenerateOutput.controller_state`) together with the state it started
from, so it can be used three ways (`mode=`):

- `"replay"`: re-run V-Reason from the recorded start with the recorded knobs; on the same input this reproduces
  the generation token for token, and ends at the saved state;
- `"continue"`: run V-Reason starting from the saved state (a warm start: Adam's moments and step counts go on);
- `"static"`: apply the saved ΔV without optimising (a fixed adapter).

The numerics are the decoding loop's own: the states are `ValueController` states, which the loop loads through
`vreason_initial_state`. Files: `controller_config.json` + `controller_model.safetensors` (never pickle). This is our
own small registry-free adapter, not a PEFT method: peft's `register_peft_method` accepts only names in its own
`PeftType` enum, and writing into peft's private registries would break on any peft release.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .configuration_vreason import VReasonConfig
from .generation.controller import ValueController
from .generation.engine import as_vreason_config
from .generation.loop import VReasonGenerateOutput, vreason_generate_kwargs
from .generation.replay import resolve_decoder_parts

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "ControllerConfig", "VReasonControllerModel"]

CONFIG_NAME = "controller_config.json"
WEIGHTS_NAME = "controller_model.safetensors"
_INITIAL = "initial."
_MODES = ("replay", "continue", "static")


@dataclass
class ControllerConfig:
    r"""
    What a saved V-Reason controller is: its shape, where it sits and the knobs it was optimised with.

    Args:
        num_key_value_heads (`int`): KV heads of the controlled layer.
        head_dim (`int`): head dimension of the controlled layer.
        num_rows (`int`): controlled value rows per sample (video tokens for `controller_scope="video"`).
        batch_size (`int`, *optional*, defaults to 1): samples the state holds.
        vreason (`dict`, *optional*): the `VReasonConfig` knobs the controller was optimised with (validated).
        base_model_name_or_path (`str`, *optional*): the model it was made on.
        model_type (`str`, *optional*): `model_type` of that model's text config (e.g. `"qwen2_5_vl_text"`).
        num_hidden_layers (`int`, *optional*): its decoder layers.
        vocab_size (`int`, *optional*): rows of its LM head.
        peft_like_type (`str`, *optional*, defaults to `"VREASON_CONTROLLER"`): tag for tools that read the file.

    `model_type`, `num_hidden_layers` and `vocab_size` (with the KV heads and head dimension) identify the model a
    controller fits; a controller is refused on a model that differs in any of them. Files written before they were
    recorded omit them, and are then checked on shapes only.
    """

    num_key_value_heads: int
    head_dim: int
    num_rows: int
    batch_size: int = 1
    vreason: dict[str, Any] = field(default_factory=dict)
    base_model_name_or_path: str | None = None
    model_type: str | None = None
    num_hidden_layers: int | None = None
    vocab_size: int | None = None
    peft_like_type: str = "VREASON_CONTROLLER"

    def __post_init__(self) -> None:
        for name in (
            "num_key_value_heads",
            "head_dim",
            "num_rows",
            "batch_size",
            "num_hidden_layers",
            "vocab_size",
        ):
            value = getattr(self, name)
            if value is None and name in ("num_hidden_layers", "vocab_size"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ControllerConfig: `{name}` must be a positive integer, got {value!r}.")
        if self.model_type is not None and not isinstance(self.model_type, str):
            raise ValueError(f"ControllerConfig: `model_type` must be a string, got {self.model_type!r}.")
        if not isinstance(self.vreason, dict):
            raise ValueError(
                f"ControllerConfig: `vreason` must be a dict of VReasonConfig knobs, got {self.vreason!r}."
            )
        self.vreason = self.vreason_config().knobs()  # validates, fills defaults

    def vreason_config(self) -> VReasonConfig:
        """The knobs as a validated `VReasonConfig`."""
        return VReasonConfig(**self.vreason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControllerConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(
                f"ControllerConfig got unknown field(s) {unknown}; valid fields: {sorted(known)}."
            )
        return cls(**data)

    def save_pretrained(self, save_directory: str | Path) -> Path:
        path = Path(save_directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_json_file(cls, path: str | Path) -> ControllerConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"`{path}` is not valid JSON: {error}") from None
        return cls.from_dict(data)


def _check_rows(rows: torch.Tensor, valid: torch.Tensor) -> None:
    """Refuse a `rows` / `valid` pair that cannot index a value cache (a damaged or hand-edited file)."""
    problem = None
    if rows.dtype not in (torch.int32, torch.int64) or rows.is_floating_point():
        problem = f"`rows` must hold integer positions, got dtype {rows.dtype}"
    elif valid.dtype != torch.bool or valid.shape != rows.shape:
        problem = (
            f"`valid` must be a boolean tensor of the shape of `rows`, got {valid.dtype} {tuple(valid.shape)}"
        )
    elif bool((rows < 0).any()):
        problem = f"`rows` holds negative positions {sorted(set(rows[rows < 0].tolist()))[:5]}"
    else:
        for b in range(rows.shape[0]):
            controlled = rows[b, valid[b]]
            if controlled.unique().numel() != controlled.numel():
                problem = f"`rows` of sample {b} repeats a controlled position"
                break
            if bool(torch.isin(rows[b, ~valid[b]], controlled).any()):
                problem = f"a padding entry of `rows` of sample {b} aliases a controlled position"
                break
    if problem is not None:
        raise ValueError(
            f"Controller weights are not a valid controller state: {problem}. The file is damaged."
        )


def _checked_state(config: ControllerConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` checked against `config` and loaded into the loop's own `ValueController`; returns its state."""
    missing = sorted({"theta", "rows", "valid"} - set(state))
    if missing:
        raise ValueError(
            f"Controller weights lack {missing}: the file is damaged or not a V-Reason controller."
        )
    rows, valid = state["rows"], state["valid"]
    expected = (config.batch_size, config.num_key_value_heads, config.num_rows, config.head_dim)
    if tuple(state["theta"].shape) != expected or tuple(rows.shape) != expected[::2]:
        raise ValueError(
            f"Controller weights have θ of shape {tuple(state['theta'].shape)} and rows {tuple(rows.shape)}, but "
            f"`controller_config.json` describes θ {expected}: the files do not belong together."
        )
    _check_rows(rows, valid)
    controller = ValueController(rows, valid, config.num_key_value_heads, config.head_dim)
    controller.load_state(state)  # every other tensor present, with its shape
    return {name: tensor.detach() for name, tensor in controller.state_dict().items()}


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
    A base model plus a saved V-Reason controller (PEFT's `PeftModel` role, for one adapter).

    Args:
        model (`PreTrainedModel`): the base model (not modified).
        config (`ControllerConfig`): shapes and knobs.
        state (`dict[str, torch.Tensor]`): the saved (final) controller state.
        initial_state (`dict[str, torch.Tensor]`, *optional*): the state the generation started from (zeros when
            omitted, which is how V-Reason starts).

    Attributes:
        state (`dict[str, torch.Tensor]`), initial_state (`dict[str, torch.Tensor]`): both states, checked
            (θ, Adam moments, step counts, rows, valid, scale).
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
        self.state = _checked_state(config, state)
        if initial_state is None:
            initial_state = {
                k: (torch.zeros_like(v) if k in ("theta", "exp_avg", "exp_avg_sq", "steps") else v)
                for k, v in self.state.items()
            }
        self.initial_state = _checked_state(config, initial_state)
        self._disabled = False

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

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Like `PeftModel.disable_adapter()`: inside the block, [`generate`] is the base model's plain decoding."""
        previous, self._disabled = self._disabled, True
        try:
            yield
        finally:
            self._disabled = previous

    def generate(self, *args: Any, mode: str = "replay", **kwargs: Any) -> Any:
        r"""
        Generate with the controller.

        Args:
            mode (`str`, *optional*, defaults to `"replay"`): `"replay"`, `"continue"` or `"static"` (see the module
                docstring). Ignored inside [`disable_adapter`].
            *args, **kwargs: the base model's `generate` arguments.
        """
        if self._disabled:
            return self.model.generate(*args, **vreason_generate_kwargs(None, model=self.model), **kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {', '.join(map(repr, _MODES))}, got {mode!r}.")
        knobs = self.config.vreason_config().knobs()
        if mode == "static":
            knobs["num_steps"] = 0
        return self.model.generate(
            *args,
            **vreason_generate_kwargs(knobs, model=self.model),
            vreason_initial_state=self.initial_state if mode == "replay" else self.state,
            **kwargs,
        )

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write `controller_config.json` and `controller_model.safetensors` to `save_directory`."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(directory)
        # clone(): the two states share their row-index tensors, and safetensors refuses shared storage.
        tensors = {k: v.detach().cpu().clone() for k, v in self.state.items()}
        tensors.update({_INITIAL + k: v.detach().cpu().clone() for k, v in self.initial_state.items()})
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
        device = next(model.parameters()).device
        state = {k: v.to(device) for k, v in tensors.items() if not k.startswith(_INITIAL)}
        initial = {k[len(_INITIAL) :]: v.to(device) for k, v in tensors.items() if k.startswith(_INITIAL)}
        return cls(model, config, state, initial or None)

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
