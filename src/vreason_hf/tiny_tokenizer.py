# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The byte-level tokenizer of the tiny random models ([`~vreason_hf.tiny_models`]): built offline, with the Qwen chat
and vision special tokens and a minimal chat template."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

__all__ = ["CHAT_TEMPLATE", "ENDOFTEXT", "SPECIAL_TOKENS", "build_tokenizer", "special_token_ids"]

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

ENDOFTEXT = "<|endoftext|>"
"""The end-of-text token (id 256): also the unknown, padding and beginning-of-sequence token of the tiny models."""


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


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The ids of `<|endoftext|>` and [`SPECIAL_TOKENS`] in `tokenizer`; a `ValueError` names any it lacks."""
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (ENDOFTEXT, *SPECIAL_TOKENS)}
    # Unknown tokens map to the unk token (`<|endoftext|>` in the byte-level tokenizer) or to `None`.
    missing = [
        token
        for token, index in ids.items()
        if index is None or (token != ENDOFTEXT and index in (tokenizer.unk_token_id, ids[ENDOFTEXT]))
    ]
    if missing:
        raise ValueError(
            f"The tokenizer lacks the special tokens {missing}; build it with `build_tokenizer()`."
        )
    return ids
