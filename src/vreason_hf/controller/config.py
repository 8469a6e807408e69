# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`ControllerConfig`: the declarative half of the controller adapter (PEFT's `PeftConfig` role)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig

__all__ = ["CONFIG_NAME", "ControllerConfig"]

CONFIG_NAME = "controller_config.json"


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
