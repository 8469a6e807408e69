"""Tests of `vreason_hf.tiny_tokenizer`: the offline byte-level tokenizer and chat template of the tiny models."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from vreason_hf.tiny_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, special_token_ids


def test_tokenizer_round_trips_text_and_special_tokens(tokenizer):
    assert len(tokenizer) == 256 + 1 + len(SPECIAL_TOKENS)
    special_ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert special_ids == list(range(257, 257 + len(SPECIAL_TOKENS)))
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 256 == tokenizer.pad_token_id

    text = "Héllo, wörld! 1 + 2 = 3\n\tdéjà vu — 视频"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text.encode("utf-8"))  # no merges: one token per UTF-8 byte
    assert tokenizer.decode(ids) == text

    mixed = "<|im_start|>user\nhi<|vision_start|><|video_pad|><|vision_end|><|im_end|>"
    mixed_ids = tokenizer(mixed, add_special_tokens=False).input_ids
    for token, index in zip(SPECIAL_TOKENS, special_ids, strict=True):
        if token in mixed:
            assert mixed_ids.count(index) == mixed.count(token), token
    assert tokenizer.decode(mixed_ids) == mixed
    assert tokenizer.decode(mixed_ids, skip_special_tokens=True) == "user\nhi"


def test_chat_template_handles_strings_and_media_items(tokenizer):
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "Describe."}],
        },
    ]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|>Describe.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert prompt == without + "<|im_start|>assistant\n"


def test_tokenizer_save_and_reload(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|im_start|>assistant\nA cyclist rides by.<|im_end|>"
    assert reloaded(text).input_ids == tokenizer(text).input_ids
    assert reloaded.chat_template == CHAT_TEMPLATE


def test_special_token_ids_name_the_tokens_a_tokenizer_lacks(tokenizer):
    assert special_token_ids(tokenizer) == {"<|endoftext|>": 256} | {
        token: 257 + index for index, token in enumerate(SPECIAL_TOKENS)
    }
    from tokenizers import pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bare = Qwen2Tokenizer(vocab={symbol: index for index, symbol in enumerate(alphabet)}, merges=[])
    with pytest.raises(
        ValueError, match=r"lacks the special tokens \['<\|im_start\|>'.*`build_tokenizer\(\)`"
    ):
        special_token_ids(bare)
