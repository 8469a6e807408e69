# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Hub artefacts: the `custom_generate` recipe folder and V-Reason model repos.

A V-Reason model repo is the base model's own repo, unchanged, plus the recipe's `custom_generate/` folder: transformers'
`from_pretrained(repo, trust_remote_code=True)` makes `custom_generate/generate.py` the model's `generate`. The knobs
live in `generation_config.json`, entry `vreason`. Everything a repo needs to run without `vreason_hf` installed is
generated here from the package sources (see `_vendor.py`); nothing is duplicated in git. The cards of both are
rendered by `cards.py`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ._vendor import SUPPORTED_TRANSFORMERS, vendored_sources
from .cards import base_modality, card_license, render_model_card, render_recipe_card
from .configuration_vreason import VReasonConfig
from .generation.engine import as_vreason_config
from .generation.hub_generate import GENERATION_CONFIG_KEY

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_TRANSFORMERS",
    "build_custom_generate_dir",
    "save_vreason_model",
]

RECIPE_REQUIREMENTS = (*SUPPORTED_TRANSFORMERS, "torch")
# Files of a base model folder that a V-Reason model repo does not take over: the card (replaced), the recipe
# (replaced) and version-control or cache folders.
_NOT_COPIED = {"README.md", "custom_generate", ".git", ".cache", ".huggingface"}


def _check_out_dir(out_dir: str | Path, overwrite: bool, *, create: bool = True) -> Path:
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"`out_dir` {str(path)!r} exists and is not a folder.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"`out_dir` {str(path)!r} is not empty; pass `overwrite=True` (CLI: `--overwrite`) to write into it."
        )
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def requirements_text(requirements: tuple[str, ...] | None = None) -> str:
    """`requirements.txt`: `requirements` (default: the recipe's), one version specifier per line, as transformers'
    requirement check reads only the first specifier of a line."""
    requirements = RECIPE_REQUIREMENTS if requirements is None else requirements
    for requirement in requirements:
        if len(re.findall(r"[<>=!~]=?", requirement)) > 1 or "," in requirement:
            raise ValueError(
                f"`{requirement}` has several version specifiers; transformers' requirement check reads only the "
                f"first one of a line, so write each on its own line."
            )
    return "".join(f"{requirement}\n" for requirement in requirements)


def _write_recipe_code(root: Path) -> Path:
    """Write `root/custom_generate/` (the shim, a flat copy of the generation core, `requirements.txt`)."""
    code = root / "custom_generate"
    if code.is_dir():
        shutil.rmtree(code)  # a stale module from an older recipe must not be left beside the new ones
    code.mkdir()
    for name, text in vendored_sources(recipe=True).items():
        (code / name).write_text(text)
    (code / "requirements.txt").write_text(requirements_text())
    return code


def build_custom_generate_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    r"""
    Build a folder ready to push as a `custom_generate` Hub repo:

        out_dir/
        ├── README.md                    # the recipe's model card
        └── custom_generate/
            ├── generate.py              # shim: GenerationMixin.generate(..., custom_generate=vreason_generate)
            ├── vreason_*.py, configuration_vreason.py   # a copy of the generation core
            └── requirements.txt         # the transformers range the core supports, one specifier per line

    Then `model.generate(**inputs, custom_generate=str(out_dir), trust_remote_code=True, vreason_config={...})`
    runs the same loop as `custom_generate=vreason_generate`. [`save_vreason_model`] writes the same
    `custom_generate/` folder into model repos.

    Args:
        out_dir (`str` or `Path`): the folder (created if missing).
        overwrite (`bool`, *optional*, defaults to `False`): allow writing into a non-empty folder.

    Returns:
        `Path`: `out_dir`.
    """
    root = _check_out_dir(out_dir, overwrite)
    _write_recipe_code(root)
    (root / "README.md").write_text(render_recipe_card())
    return root


def _hub_id_of(model: Any) -> str | None:
    """The Hub id `model` was loaded from: its `name_or_path`, if that is a repo id in the local Hub cache."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    name = str(getattr(model, "name_or_path", "") or "")
    if not name or Path(name).exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name if isinstance(try_to_load_from_cache(name, "config.json"), str) else None


def _copy_model_folder(source: Path, root: Path) -> None:
    """Copy a model folder's files byte for byte (following links, as in a Hub cache snapshot)."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if relative.parts[0] in _NOT_COPIED or not path.is_file():
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _write_knobs(root: Path, knobs: dict[str, Any]) -> None:
    """Add the knobs to `generation_config.json` (entry `vreason`), creating it from `config.json` if missing."""
    from transformers import GenerationConfig

    path = root / "generation_config.json"
    if path.is_file():
        data = json.loads(path.read_text())
    else:  # what `from_pretrained` would derive from `config.json`
        derived = GenerationConfig.from_pretrained(
            root, config_file_name="config.json", _from_model_config=True
        )
        data = json.loads(derived.to_json_string(use_diff=True))
    # GenerationConfig drops unknown keys (ours) from a config marked `_from_model_config`; in transformers 5.24 the
    # flag has no other effect, so clear it rather than lose the knobs.
    data.pop("_from_model_config", None)
    data[GENERATION_CONFIG_KEY] = knobs
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _check_base(base_config: dict[str, Any], config: VReasonConfig, where: str) -> None:
    if base_config.get("is_encoder_decoder"):
        raise ValueError(f"{where} is an encoder-decoder model; V-Reason supports decoder-only models.")
    modality = base_modality(base_config)
    if (config.controller_scope == "video" and modality != "video") or (
        config.controller_scope == "visual" and modality == "text"
    ):
        raise ValueError(
            f"{where} (model type `{base_config.get('model_type')}`) has no "
            f"{'video' if config.controller_scope == 'video' else 'video or image'} tokens, so "
            f'`controller_scope="{config.controller_scope}"` cannot work; pass `vreason_config='
            f'{{"controller_scope": "prompt"}}` (and other knobs) to control the prompt\'s value rows.'
        )


def save_vreason_model(
    base_model_or_path: Any,
    out_dir: str | os.PathLike,
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    *,
    processor: Any = None,
    base_model: str | None = None,
    license: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
) -> Path:
    r"""
    Create a V-Reason model repo: the base model's own repo plus V-Reason as its `generate`.

        out_dir/
        ├── config.json, model*.safetensors, tokenizer / processor files, ...   # the base model's, unchanged
        ├── generation_config.json       # the base's, plus the knobs under `vreason`
        ├── custom_generate/             # the recipe of `build_custom_generate_dir`
        └── README.md                    # the model card

    Every class that loads the base model loads this folder with exactly its weights. Loaded with
    `trust_remote_code=True`, transformers makes `custom_generate/generate.py` the model's `generate`: it decodes with
    V-Reason and the stored knobs (`vreason_config={...}` overrides some per call, `vreason_config=None` decodes
    plainly). Without `trust_remote_code` the model decodes plainly.

    Args:
        base_model_or_path (`PreTrainedModel`, `str` or `os.PathLike`):
            A local model folder (its files are copied byte for byte), a Hub model id (downloaded with
            `huggingface_hub.snapshot_download`, then copied) or a model object (saved with `save_pretrained`).
        out_dir (`str` or `os.PathLike`): where to write the repo.
        vreason_config (`VReasonConfig` or `dict`, *optional*): the repo's default knobs (defaults to
            `VReasonConfig()`).
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`, *optional*): saved alongside (over the base
            folder's processor files, if any).
        base_model (`str`, *optional*): the base model's Hub id for the card's `base_model`. By default the id given
            as `base_model_or_path`, or the id a model object was loaded from (when it is in the local Hub cache);
            for a local folder it is omitted unless given.
        license (`str`, *optional*): the card's license; by default the base model card's, when it can be read.
        repo_id (`str`, *optional*): the repo's future Hub id, for the card's example (defaults to `out_dir`).
        revision (`str`, *optional*): the revision to download when `base_model_or_path` is a Hub id.
        overwrite (`bool`, *optional*, defaults to `False`): allow writing into a non-empty folder.

    Returns:
        `Path`: `out_dir`.
    """
    config = as_vreason_config(vreason_config)
    if base_model is not None:
        _check_hub_id(base_model, "base_model")
    out_path = _check_out_dir(out_dir, overwrite, create=False)  # fail before any download or copy
    if isinstance(base_model_or_path, str | os.PathLike):
        source, hub_id = _base_folder(base_model_or_path, out_path, revision)
        base_config = json.loads((source / "config.json").read_text())
        _check_base(base_config, config, f"`base_model_or_path` {str(base_model_or_path)!r}")
        root = _check_out_dir(out_path, overwrite)
        _copy_model_folder(source, root)
        readme = source / "README.md"
    else:
        _check_model_object(base_model_or_path, config, revision)
        root = _check_out_dir(out_path, overwrite)
        hub_id, readme = _save_model_object(base_model_or_path, root, processor)
        base_config = json.loads((root / "config.json").read_text())
    if processor is not None:
        processor.save_pretrained(root)
    _write_knobs(root, config.knobs())
    _write_recipe_code(root)
    license_fields = {"license": license} if license is not None else card_license(readme)
    _write_model_card(
        root, config, base_config, base_model or hub_id, license_fields, repo_id or str(out_dir)
    )
    return root


def _base_folder(
    name_or_path: str | os.PathLike, out_path: Path, revision: str | None
) -> tuple[Path, str | None]:
    """The folder of a base model given as a local folder or a Hub id (downloaded), and the Hub id if it was one."""
    name = str(name_or_path)
    source = Path(name_or_path)
    hub_id = None
    if source.is_dir():
        if revision is not None:
            logger.warning(
                "`revision` applies to Hub ids only; %r is a local folder, so it is ignored.", name
            )
        if out_path.resolve() == source.resolve() or source.resolve() in out_path.resolve().parents:
            raise ValueError(f"`out_dir` {str(out_path)!r} must not be `base_model_or_path` or inside it.")
    else:
        _check_hub_id(name, "base_model_or_path", or_folder=True)
        from huggingface_hub import snapshot_download

        source = Path(snapshot_download(name, revision=revision))
        hub_id = name
    if not (source / "config.json").is_file():
        raise FileNotFoundError(
            f"`base_model_or_path` {name!r} has no `config.json`: it is not a transformers model folder."
        )
    return source, hub_id


def _check_model_object(model: Any, config: VReasonConfig, revision: str | None) -> None:
    """Raise unless `model` is a decoder-only model that can generate with `config`'s controller scope."""
    if revision is not None:
        logger.warning("`revision` applies to Hub ids only; a model object was given, so it is ignored.")
    if not callable(getattr(model, "can_generate", None)) or not model.can_generate():
        raise TypeError(
            f"`base_model_or_path` must be a model that can generate (e.g. `AutoModelForImageTextToText`), a "
            f"folder or a Hub id; got `{type(model).__name__}`, which has no language-model head."
        )
    _check_base(model.config.to_dict(), config, f"`{type(model).__name__}`")


def _save_model_object(model: Any, root: Path, processor: Any) -> tuple[str | None, Path | None]:
    """Save `model` into `root`; return the Hub id it was loaded from and its card (each `None` when unknown)."""
    model.save_pretrained(root)
    if processor is None:
        logger.warning(
            "%s has no processor or tokenizer files: a model object does not carry them. Pass `processor=` (the "
            "model's processor or tokenizer) so that `AutoProcessor.from_pretrained` works on the repo.",
            root,
        )
    hub_id = _hub_id_of(model)
    name = str(getattr(model, "name_or_path", "") or "")
    readme = Path(name, "README.md") if name and Path(name).is_dir() else None
    if hub_id is not None:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(hub_id, "README.md")
        readme = Path(cached) if isinstance(cached, str) else None
    return hub_id, readme


def _write_model_card(
    root: Path,
    config: VReasonConfig,
    base_config: dict[str, Any],
    base_model: str | None,
    license_fields: dict[str, str],
    repo_id: str,
) -> None:
    """Write `root/README.md`, warning when the card has to leave out the base model or the license."""
    if base_model is None:
        logger.warning(
            "The card of %s names no `base_model`: the base model's Hub id is unknown. Pass `base_model=` (its Hub "
            "id) to name it.",
            root,
        )
    if "license" not in license_fields:
        logger.warning(
            "The card of %s has no `license`: the base model's license could not be read. Pass `license=` (the base "
            "model's license).",
            root,
        )
    card = render_model_card(
        config, base_config=base_config, base_model=base_model, repo_id=repo_id, **license_fields
    )
    (root / "README.md").write_text(card)


def _check_hub_id(value: str, name: str, *, or_folder: bool = False) -> None:
    """Raise unless `value` is a well-formed Hub repo id (`org/name`), never a local path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        if or_folder:
            raise FileNotFoundError(
                f"`{name}` {value!r} is neither a local folder nor a Hub model id."
            ) from None
        raise ValueError(
            f"`{name}` {value!r} is not a Hub model id (e.g. `Qwen/Qwen2.5-VL-7B-Instruct`); the card's `base_model` "
            f"names the base on the Hub, never a local path."
        ) from None
