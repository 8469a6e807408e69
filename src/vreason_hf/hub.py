# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Hub artefacts: the `custom_generate` recipe folder, V-Reason model repos, and their model cards.

Everything a Hub repo needs to run without `vreason_hf` installed is generated here from the package sources
(see `_vendor.py`); nothing is duplicated in git.
"""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path
from typing import Any

from .configuration_vreason import VReasonConfig
from .generation.engine import as_vreason_config

__all__ = [
    "MODEL_CARDS",
    "SUPPORTED_TRANSFORMERS",
    "build_custom_generate_dir",
    "knob_descriptions",
    "render_model_card",
    "save_vreason_model",
]

MODEL_CARDS = Path(__file__).resolve().parent / "model_cards"
RECIPE_CARD = MODEL_CARDS / "custom_generate_recipe.md"
MODEL_CARD_TEMPLATE = MODEL_CARDS / "vreason_model_template.md"
# The transformers range the generation core is tested against (it uses generation internals).
SUPPORTED_TRANSFORMERS = "transformers>=5.24,<5.25"


def _check_out_dir(out_dir: str | Path, overwrite: bool) -> Path:
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"`out_dir` {str(path)!r} exists and is not a folder.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"`out_dir` {str(path)!r} is not empty; pass `overwrite=True` (CLI: `--overwrite`) to write into it."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_custom_generate_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    r"""
    Build a folder ready to push as a `custom_generate` Hub repo:

        out_dir/
        ├── README.md                    # the recipe's model card
        └── custom_generate/
            ├── generate.py              # shim: GenerationMixin.generate(..., custom_generate=vreason_generate)
            ├── vreason_*.py, configuration_vreason.py   # a copy of the generation core
            └── requirements.txt         # the transformers range the core supports

    Then `model.generate(**inputs, custom_generate=str(out_dir), trust_remote_code=True, vreason_config={...})`
    runs the same loop as `custom_generate=vreason_generate`.

    Args:
        out_dir (`str` or `Path`): the folder (created if missing).
        overwrite (`bool`, *optional*, defaults to `False`): allow writing into a non-empty folder.

    Returns:
        `Path`: `out_dir`.
    """
    from ._vendor import vendored_sources

    root = _check_out_dir(out_dir, overwrite)
    code = root / "custom_generate"
    code.mkdir(exist_ok=True)
    for name, text in vendored_sources(recipe=True).items():
        (code / name).write_text(text)
    (code / "requirements.txt").write_text(f"{SUPPORTED_TRANSFORMERS}\ntorch\n")
    (root / "README.md").write_text(RECIPE_CARD.read_text())
    return root


def knob_descriptions() -> dict[str, tuple[str, str]]:
    """`{knob: (default as written in the card, description)}` from the recipe card's Additional Arguments table."""
    section = RECIPE_CARD.read_text().split("## Additional Arguments", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(.+?)` \| (.+?) \|$", section, flags=re.M)
    return {name: (default, description) for name, default, description in rows}


def render_model_card(
    config: VReasonConfig, *, base_model: str, repo_id: str | None = None, license: str = "apache-2.0"
) -> str:
    r"""
    The model card of a V-Reason model repo: the template in `model_cards/` with the base model and this repo's
    knob values filled in.

    Args:
        config (`VReasonConfig`): the repo's knobs (and `base_config`).
        base_model (`str`): Hub id or name of the wrapped model.
        repo_id (`str`, *optional*): the repo's own id, for the usage snippet (defaults to `<base>-vreason`).
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license (use the base model's).
    """
    descriptions = knob_descriptions()
    lines = ["| argument | value in this repo | description |", "|---|---|---|"]
    for name, value in config.knobs().items():
        _, description = descriptions[name]
        lines.append(f"| `{name}` | `{json.dumps(value)}` | {description} |")
    model_type = getattr(config.base_config, "model_type", "unknown")
    return string.Template(MODEL_CARD_TEMPLATE.read_text()).substitute(
        base_model=base_model,
        base_model_type=model_type,
        repo_id=repo_id or f"{base_model.split('/')[-1]}-vreason",
        license=license,
        knob_table="\n".join(lines),
    )


def save_vreason_model(
    base_model_or_path: Any,
    out_dir: str | Path,
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    *,
    processor: Any = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    **from_pretrained_kwargs: Any,
) -> Path:
    r"""
    Create a V-Reason model repo from a supported base model: weights (unchanged, under `model.`), `config.json`
    with `model_type: "vreason"`, the knobs, the base config and an `auto_map` for `AutoConfig`, `AutoModel`,
    `AutoModelForImageTextToText` and `AutoModelForCausalLM`, the code files, the processor, the generation config
    and a model card.

    Load it with `AutoModelForImageTextToText.from_pretrained(out_dir, trust_remote_code=True)`; its `generate()`
    runs V-Reason with these knobs by default.

    Args:
        base_model_or_path (`PreTrainedModel` or `str`): the base model, or a Hub id / folder to load it from (with
            `AutoModelForImageTextToText`, or `AutoModelForCausalLM` for text-only models).
        out_dir (`str` or `Path`): where to write the repo.
        vreason_config (`VReasonConfig` or `dict`, *optional*): the default knobs of the repo.
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`, *optional*): saved alongside; when
            `base_model_or_path` is a path it defaults to `AutoProcessor.from_pretrained(path)`.
        repo_id (`str`, *optional*): the repo's future Hub id, used in the model card's example.
        overwrite (`bool`, *optional*, defaults to `False`): allow writing into a non-empty folder.
        from_pretrained_kwargs: passed to `from_pretrained` when loading the base model from a path.

    Returns:
        `Path`: `out_dir`.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

    from .modeling_vreason import VReasonForConditionalGeneration

    knobs = as_vreason_config(vreason_config).knobs()
    if isinstance(base_model_or_path, str | Path):
        name = str(base_model_or_path)
        base_config = AutoConfig.from_pretrained(name, **from_pretrained_kwargs)
        auto = (
            AutoModelForImageTextToText
            if getattr(base_config, "vision_config", None)
            else AutoModelForCausalLM
        )
        base = auto.from_pretrained(name, **from_pretrained_kwargs)
        if processor is None:
            processor = AutoProcessor.from_pretrained(name, **from_pretrained_kwargs)
    else:
        base = base_model_or_path
        name = getattr(base, "name_or_path", "") or type(base).__name__
    if getattr(base.config, "model_type", None) == "vreason":
        raise ValueError("`base_model_or_path` is already a V-Reason model; pass its base model instead.")

    root = _check_out_dir(out_dir, overwrite)
    # A copy: the wrapper's init sets attention settings on its config tree, which must not touch the caller's model.
    config = VReasonConfig(base_config=copy.deepcopy(base.config), **knobs)
    wrapper = VReasonForConditionalGeneration(config, base_model=base)
    wrapper.generation_config = base.generation_config
    wrapper.save_pretrained(root)
    if processor is not None:
        processor.save_pretrained(root)
    (root / "README.md").write_text(render_model_card(config, base_model=name, repo_id=repo_id))
    return root
