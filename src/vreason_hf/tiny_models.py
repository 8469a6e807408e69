# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Tiny random video LMMs, built offline from one spec per model family (their tokenizer: [`~vreason_hf.tiny_tokenizer`]).

The models are *random*: their outputs are meaningless, but they run the code paths of the real checkpoints (vision
encoding, multimodal rotary positions, caches, `generate`). The named model ``tiny-qwen2.5-vl`` of the `vreason`
command is one (see [`~vreason_hf.assets`]); the test-suite builds them all through `vreason_hf.testing`.

```python
>>> from vreason_hf.tiny_models import build_tiny

>>> model, processor = build_tiny("qwen2_5_vl", seed=0)
>>> model, tokenizer = build_tiny("llama", hidden_size=96)  # text-only: the "processor" is the tokenizer
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tiny_tokenizer import CHAT_TEMPLATE, ENDOFTEXT, build_tokenizer, special_token_ids

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["TINY_SPECS", "TinySpec", "build_tiny"]

# Shorthands of the per-family functions: config kwargs, build options, special-token ids.
_Kwargs = dict[str, Any]
_Options = Mapping[str, Any]
_Ids = dict[str, int]


# --------------------------------------------------------------------------------------------------
# Per-family configs and processors
# --------------------------------------------------------------------------------------------------

_TEXT_DEFAULTS: _Kwargs = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": None,  # 2 * hidden_size
}
_VISION_DEFAULTS: _Kwargs = {"vision_hidden_size": 32, "vision_depth": 2}


def _text_config(tokenizer: PreTrainedTokenizerBase, ids: _Ids, o: _Options) -> _Kwargs:
    """The language-model config shared by every family (sizes from the options, ids from the tokenizer)."""
    hidden, heads, kv_heads = o["hidden_size"], o["num_attention_heads"], o["num_key_value_heads"]
    if hidden % heads:
        raise ValueError(f"hidden_size ({hidden}) must be divisible by num_attention_heads ({heads}).")
    if heads % kv_heads:
        raise ValueError(
            f"num_attention_heads ({heads}) must be divisible by num_key_value_heads ({kv_heads})."
        )
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": o["intermediate_size"] if o["intermediate_size"] is not None else 2 * hidden,
        "num_hidden_layers": o["num_hidden_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 4096,
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids[ENDOFTEXT],
    }


def _mrope(o: _Options, rope_theta: float, **extra: Any) -> _Kwargs:
    """Multimodal rotary parameters whose (temporal, height, width) `mrope_section` sums to `head_dim // 2`."""
    head_dim = o["hidden_size"] // o["num_attention_heads"]
    half = head_dim // 2
    if half < 3:
        raise ValueError(f"head_dim must be at least 6 for multimodal rotary embeddings, got {head_dim}.")
    spatial = max(1, half // 4)
    section = [half - 2 * spatial, spatial, spatial]
    return {"rope_type": "default", "rope_theta": rope_theta, "mrope_section": section, **extra}


def _qwen_config(text: _Kwargs, vision: _Kwargs, ids: _Ids) -> _Kwargs:
    """The config kwargs of a Qwen-VL family: text and vision configs plus the vision token ids."""
    return {
        "text_config": text,
        "vision_config": vision,
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _qwen_vision(o: _Options, patch_size: int, **family: Any) -> _Kwargs:
    """The vision config of a Qwen-VL tower: 2 heads, 2x2 spatial merge, frame pairs, plus the family's keys."""
    common = {"depth": o["vision_depth"], "num_heads": 2, "patch_size": patch_size}
    return {**common, "spatial_merge_size": 2, "temporal_patch_size": 2, **family}


def _qwen_merger_sizes(o: _Options) -> _Kwargs:
    """The vision widths of Qwen2.5-VL and Qwen3-VL (MLP twice the width; the merger outputs `hidden_size`)."""
    width = o["vision_hidden_size"]
    return {"hidden_size": width, "intermediate_size": 2 * width, "out_hidden_size": o["hidden_size"]}


def _qwen2_5_vl_config(text: _Kwargs, o: _Options, ids: _Ids) -> _Kwargs:
    # Window attention in every block but the last.
    window = {"window_size": 112, "fullatt_block_indexes": [o["vision_depth"] - 1], "tokens_per_second": 2}
    vision = _qwen_vision(o, 14, **_qwen_merger_sizes(o), **window)
    return _qwen_config({**text, "rope_parameters": _mrope(o, 1_000_000.0)}, vision, ids)


def _qwen2_vl_config(text: _Kwargs, o: _Options, ids: _Ids) -> _Kwargs:
    sizes = {"embed_dim": o["vision_hidden_size"], "hidden_size": o["hidden_size"], "mlp_ratio": 2}
    vision = _qwen_vision(o, 14, **sizes)
    return _qwen_config({**text, "rope_parameters": _mrope(o, 1_000_000.0)}, vision, ids)


def _qwen3_vl_config(text: _Kwargs, o: _Options, ids: _Ids) -> _Kwargs:
    vision = _qwen_vision(
        o, 16, **_qwen_merger_sizes(o), num_position_embeddings=64, deepstack_visual_indexes=[0]
    )
    head_dim = o["hidden_size"] // o["num_attention_heads"]
    rope = _mrope(o, 5_000_000.0, mrope_interleaved=True)
    return _qwen_config({**text, "head_dim": head_dim, "rope_parameters": rope}, vision, ids)


def _pinpoints(image_size: int) -> list[list[int]]:
    return [[image_size * h, image_size * w] for h in (1, 2) for w in (1, 2)]


def _llava_onevision_config(text: _Kwargs, o: _Options, ids: _Ids) -> _Kwargs:
    image_size, patch_size, width = o["image_size"], o["patch_size"], o["vision_hidden_size"]
    if image_size % patch_size:
        raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size}).")
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0}
    vision = {
        "model_type": "siglip_vision_model",
        "hidden_size": width,
        "intermediate_size": 2 * width,
        "num_hidden_layers": o["vision_depth"],
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": patch_size,
        "vision_use_head": False,
    }
    return {
        "text_config": {**text, "model_type": "qwen2", "rope_parameters": rope},
        "vision_config": vision,
        "image_token_index": ids["<|image_pad|>"],
        "video_token_index": ids["<|video_pad|>"],
        "vision_feature_select_strategy": "full",
        "vision_feature_layer": -1,
        "image_grid_pinpoints": _pinpoints(image_size),
    }


def _llama_config(text: _Kwargs, o: _Options, ids: _Ids) -> _Kwargs:
    return {**text, "tie_word_embeddings": False}


def _qwen2_vl_processor(processor_class: type, tokenizer: Any, o: _Options) -> Any:
    """Qwen2-VL and Qwen2.5-VL share image and video processors; `min_pixels`/`max_pixels` are per frame."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pixels = {"min_pixels": o["min_pixels"], "max_pixels": o["max_pixels"]}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels, cap_pixels_per_frame=True),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _qwen3_vl_processor(processor_class: type, tokenizer: Any, o: _Options) -> Any:
    """Qwen3-VL's video budget counts the pixels of all frames together (the image processor's: per image)."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLVideoProcessor

    size = {"shortest_edge": o["min_pixels"], "longest_edge": o["max_pixels"]}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size=size, cap_pixels_per_frame=False),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _llava_onevision_processor(processor_class: type, tokenizer: Any, o: _Options) -> Any:
    """`num_image_tokens` must match the vision tower, else the model fails with "features and tokens do not match"."""
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    image_size = o["image_size"]
    size = {"height": image_size, "width": image_size}
    return processor_class(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=_pinpoints(image_size)),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer,
        num_image_tokens=(image_size // o["patch_size"]) ** 2,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
    )


# --------------------------------------------------------------------------------------------------
# Specs and the builder
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinySpec:
    """How to build one tiny model family: the data [`build_tiny`] runs its one pipeline on.

    Attributes:
        family (`str`): the name [`build_tiny`] takes (a key of [`TINY_SPECS`]).
        config_class, model_class (`str`): transformers class names (the model with its generation head).
        processor_class (`str`, *optional*): the processor class name; `None` for a text-only family.
        config (`Callable`): `(text_config, options, token_ids) -> config kwargs`: the family's rotary
            parameters and vision config around the shared language-model config.
        processor (`Callable`, *optional*): `(processor_class, tokenizer, options) -> processor`.
        defaults (`Mapping[str, Any]`): the family's options beyond the shared language-model sizes.
        notes (`str`): what the defaults give (parameters; video tokens of an 8-frame 640x272 clip).
    """

    family: str
    config_class: str
    model_class: str
    processor_class: str | None
    config: Callable[[_Kwargs, _Options, _Ids], _Kwargs]
    processor: Callable[[type, Any, _Options], Any] | None = None
    defaults: _Options = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.processor_class is None) != (self.processor is None):
            raise ValueError(
                f"TinySpec {self.family!r}: set both `processor_class` and `processor` (a video family) or "
                "neither (a text-only family)."
            )

    @property
    def video(self) -> bool:
        """Whether the family takes video (it has a processor); `False` for text-only families."""
        return self.processor_class is not None

    def options(self, overrides: _Options) -> _Kwargs:
        """The defaults updated with `overrides`; unknown names raise a `TypeError` that lists the known ones."""
        options = {**_TEXT_DEFAULTS, **self.defaults}
        unknown = sorted(set(overrides) - set(options))
        if unknown:
            raise TypeError(
                f"`build_tiny({self.family!r})` got unknown options {unknown}; it takes {sorted(options)}."
            )
        return {**options, **overrides}


_QWEN2_PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}

TINY_SPECS: dict[str, TinySpec] = {
    spec.family: spec
    for spec in (
        TinySpec(
            "qwen2_5_vl", "Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
            _qwen2_5_vl_config, _qwen2_vl_processor, {**_VISION_DEFAULTS, **_QWEN2_PIXELS},
            "about 190k parameters; 48 video tokens (14-pixel patches merged 2x2, frames in pairs)",
        ),
        TinySpec(
            "qwen2_vl", "Qwen2VLConfig", "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
            _qwen2_vl_config, _qwen2_vl_processor, {**_VISION_DEFAULTS, **_QWEN2_PIXELS},
            "about 190k parameters; 48 video tokens (`vision_hidden_size` is the vision `embed_dim`)",
        ),
        TinySpec(
            "qwen3_vl", "Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor",
            _qwen3_vl_config, _qwen3_vl_processor,
            {**_VISION_DEFAULTS, "min_pixels": 32 * 32 * 4, "max_pixels": 32 * 32 * 16 * 8},
            "about 230k parameters; 48 video tokens plus per-frame-pair timestamp text (16-pixel patches, "
            "deepstack from the first block, interleaved mrope; the pixel budget counts all frames together); "
            "its video processor re-samples frames unless called with `do_sample_frames=False`, as `build_inputs` is",
        ),
        TinySpec(
            "llava_onevision", "LlavaOnevisionConfig", "LlavaOnevisionForConditionalGeneration",
            "LlavaOnevisionProcessor", _llava_onevision_config, _llava_onevision_processor,
            {**_VISION_DEFAULTS, "image_size": 56, "patch_size": 14},
            "about 150k parameters, SigLIP vision tower and Qwen2 language model; 8 * 2 * 2 + 1 = 33 video tokens",
        ),
        TinySpec(
            "llama", "LlamaConfig", "LlamaForCausalLM", None, _llama_config,
            notes="about 110k parameters, text-only; returns the tokenizer in place of a processor",
        ),
    )
}  # fmt: skip
"""The tiny model families, by name."""


def _seeded_init(seed: int, model_class: type[PreTrainedModel], config: Any) -> Any:
    """Instantiate `model_class(config)` with its random initialisation drawn from `torch.manual_seed(seed)`.

    The global RNG state is forked, so building a model does not perturb the caller's random stream.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config)


def _finish(model: PreTrainedModel, ids: _Ids) -> None:
    """Set the generation defaults of a tiny model (stop at `<|im_end|>`, pad with `<|endoftext|>`) and eval mode.

    The attention implementation is set to `"sdpa"`, what `from_pretrained` picks: a model built straight from a
    config otherwise runs eager attention, and its reloaded copy would not compute bit-identical logits.
    """
    model.set_attn_implementation("sdpa")
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids[ENDOFTEXT]
    model.generation_config.bos_token_id = ids[ENDOFTEXT]
    model.eval()


def build_tiny(
    family: str, seed: int = 0, *, tokenizer: PreTrainedTokenizerBase | None = None, **overrides: Any
) -> tuple[PreTrainedModel, Any]:
    """
    Build a tiny random model of one family and its processor (or tokenizer), offline.

    Every family shares the language-model options `hidden_size` (64; also the vision merger's output size),
    `num_hidden_layers` (2), `num_attention_heads` (4; `head_dim = hidden_size // num_attention_heads`, and the
    multimodal rotary `mrope_section` is derived to sum to `head_dim // 2`), `num_key_value_heads` (2) and
    `intermediate_size` (`2 * hidden_size`). The video families add `vision_hidden_size` (32) and `vision_depth` (2);
    the Qwen families `min_pixels` and `max_pixels` (per frame for Qwen2/2.5-VL, `28 * 28 * 4` to `28 * 28 * 16`;
    over all frames for Qwen3-VL, `32 * 32 * 4` to `32 * 32 * 16 * 8`); LLaVA-OneVision `image_size` (56) and
    `patch_size` (14). [`TinySpec.notes`] says what the defaults give.

    Args:
        family (`str`):
            A key of [`TINY_SPECS`]: `"qwen2_5_vl"`, `"qwen2_vl"`, `"qwen3_vl"`, `"llava_onevision"` or `"llama"`.
        seed (`int`, *optional*, defaults to 0):
            Seed of the random initialisation (`torch.manual_seed`, on a forked RNG state).
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            Tokenizer to use; defaults to a new [`build_tokenizer`].
        **overrides:
            Options of the family (see above) to change from their defaults.

    Returns:
        `tuple[PreTrainedModel, Any]`: the model in eval mode (its `generation_config` stops at `<|im_end|>` and pads
        with `<|endoftext|>`) and its processor, or the tokenizer for a text-only family.

    Raises:
        `ValueError`: if `family` is unknown or the sizes are inconsistent.
        `TypeError`: if an override is not an option of the family.
    """
    import transformers

    if family not in TINY_SPECS:
        raise ValueError(f"Unknown tiny model family {family!r}; the families are: {', '.join(TINY_SPECS)}.")
    spec = TINY_SPECS[family]
    options = spec.options(overrides)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = special_token_ids(tokenizer)
    config_class = getattr(transformers, spec.config_class)
    config = config_class(**spec.config(_text_config(tokenizer, ids, options), options, ids))
    model = _seeded_init(seed, getattr(transformers, spec.model_class), config)
    _finish(model, ids)
    if not spec.video:  # text-only: the tokenizer stands in for the processor
        return model, tokenizer
    return model, spec.processor(getattr(transformers, spec.processor_class), tokenizer, options)
