# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Model cards: the `custom_generate` recipe's card and the card of a V-Reason model repo.

Both are rendered from the templates in `model_cards/`, with the knob tables generated from [`VReasonConfig`] (see
`knobs.py`), so a card cannot drift from the code. [`~vreason_hf.hub.save_vreason_model`] writes the model card into
the repos it builds.
"""

from __future__ import annotations

import logging
import string
from pathlib import Path
from typing import Any

from ._vendor import SUPPORTED_TRANSFORMERS
from .configuration_vreason import VReasonConfig
from .knobs import knob_table

logger = logging.getLogger(__name__)

__all__ = ["MODEL_CARDS", "base_modality", "card_license", "render_model_card", "render_recipe_card"]

MODEL_CARDS = Path(__file__).resolve().parent / "model_cards"
RECIPE_CARD = MODEL_CARDS / "custom_generate_recipe.md"
MODEL_CARD_TEMPLATE = MODEL_CARDS / "vreason_model_template.md"
_PIPELINE_TAG = {"video": "video-text-to-text", "image": "image-text-to-text", "text": "text-generation"}


def render_recipe_card() -> str:
    """The recipe's model card: the template in `model_cards/` with the knob table generated from `VReasonConfig`."""
    return string.Template(RECIPE_CARD.read_text()).substitute(knob_table=knob_table())


def base_modality(base_config: dict[str, Any]) -> str:
    """`"video"`, `"image"` or `"text"`: what the base model (a `config.json` dict) takes besides text."""
    from .loading import auto_model_class

    if any(base_config.get(key) is not None for key in ("video_token_id", "video_token_index")):
        return "video"
    return "text" if auto_model_class(base_config).__name__ == "AutoModelForCausalLM" else "image"


_VIDEO_EXAMPLE = """\
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.video_utils import load_video

model = AutoModelForImageTextToText.from_pretrained("{repo_id}", trust_remote_code=True, dtype="auto")
processor = AutoProcessor.from_pretrained("{repo_id}")
frames, metadata = load_video("clip.mp4", num_frames=16, backend="pyav")  # the metadata carries the real fps
messages = [{{"role": "user", "content": [{{"type": "video"}}, {{"type": "text", "text": "What happens next?"}}]}}]
text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=[text], videos=[frames], video_metadata=[metadata], return_tensors="pt").to(model.device)

out = model.generate(**inputs, max_new_tokens=1024)                             # V-Reason, this repo's knobs
out = model.generate(**inputs, max_new_tokens=1024, vreason_config={{"lr": 0.1}})  # override a knob
out = model.generate(**inputs, max_new_tokens=1024, vreason_config=None)         # plain decoding"""

_TEXT_EXAMPLE = """\
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("{repo_id}", trust_remote_code=True, dtype="auto")
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
messages = [{{"role": "user", "content": "A farmer has 17 sheep. All but 9 run away. How many are left?"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)

out = model.generate(**inputs, max_new_tokens=512)                             # V-Reason, this repo's knobs
out = model.generate(**inputs, max_new_tokens=512, vreason_config={{"lr": 0.1}})  # override a knob
out = model.generate(**inputs, max_new_tokens=512, vreason_config=None)         # plain decoding"""


def render_model_card(
    config: VReasonConfig,
    *,
    base_config: dict[str, Any],
    base_model: str | None = None,
    repo_id: str,
    license: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
) -> str:
    r"""
    The model card of a V-Reason model repo: the template in `model_cards/` with the base model, this repo's knobs
    and a usage example filled in.

    Args:
        config (`VReasonConfig`): the repo's knobs.
        base_config (`dict`): the base model's `config.json`.
        base_model (`str`, *optional*): the base model's Hub id (front matter `base_model`); omitted when unknown.
            Never a local path or a class name.
        repo_id (`str`): the id (or local folder) to load the repo from in the usage example.
        license (`str`, *optional*): the card's license (the base model's); omitted when unknown.
        license_name (`str`, *optional*), license_link (`str`, *optional*): for `license: other`.
    """
    from huggingface_hub import ModelCardData

    from .loading import auto_model_class

    table = knob_table(config.knobs(), headers=("argument", "value in this repo", "description"))
    modality = base_modality(base_config)
    model_type = base_config.get("model_type", "unknown")
    architecture = (base_config.get("architectures") or [None])[0]
    auto_class = auto_model_class(base_config).__name__
    tags = ["custom_generate", "v-reason", "reasoning", "test-time-optimization"]
    if modality == "video":
        tags.insert(2, "video")
    front_matter = ModelCardData(
        library_name="transformers",
        license=license,
        license_name=license_name,
        license_link=license_link,
        pipeline_tag=_PIPELINE_TAG[modality],
        base_model=base_model,
        tags=tags,
    ).to_yaml()
    if base_model is not None:
        title = f"{base_model} with V-Reason"
        base_text = f"[`{base_model}`](https://huggingface.co/{base_model}) (model type `{model_type}`)."
    else:
        title = f"A `{model_type}` model with V-Reason"
        base_text = (
            f"A `{model_type}` model (`{architecture}`), saved from a local copy whose Hub id was not given, so this "
            f"card names none."
        )
    classes = [f"`{auto_class}`"] + ([f"`{architecture}`"] if architecture else [])
    return string.Template(MODEL_CARD_TEMPLATE.read_text()).substitute(
        front_matter=front_matter,
        title=title,
        base_model_text=base_text,
        generating_classes=" or ".join(classes),
        requirements=", ".join(f"`{r}`" for r in SUPPORTED_TRANSFORMERS),
        knob_table=table,
        example=(_TEXT_EXAMPLE if modality == "text" else _VIDEO_EXAMPLE).format(repo_id=repo_id),
    )


def card_license(readme: Path | None) -> dict[str, str]:
    """`license` (and `license_name` / `license_link`) from a model card's front matter, or `{}`."""
    from huggingface_hub import ModelCard

    if readme is None or not readme.is_file():
        return {}
    try:
        data = ModelCard.load(readme).data.to_dict()
    except (
        Exception
    ) as error:  # a malformed card must not stop the export; the caller says the license is unknown
        logger.warning("Could not read the base model's card %s: %s", readme, error)
        return {}
    return {k: data[k] for k in ("license", "license_name", "license_link") if isinstance(data.get(k), str)}
