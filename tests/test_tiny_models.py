"""Tests of `vreason_hf.tiny_models`: the tiny random models of every family, built by one spec-driven builder."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vreason_hf.testing import VIDEO_FIXTURES, count_parameters, weights_digest
from vreason_hf.tiny_models import TINY_SPECS, TinySpec, build_tiny

QUESTION = "What happens in the video?"


def _video_token_count(model, processor, inputs) -> int:
    """The number of video tokens each family's processor must insert for `inputs`."""
    if "video_grid_thw" in inputs:
        # Qwen families: (t, h, w) patches, merged spatially merge_size x merge_size.
        return int(inputs["video_grid_thw"].prod()) // processor.video_processor.merge_size**2
    # LLaVA-OneVision: per frame, the patch grid is 2x2 average-pooled, plus one newline token per video.
    vision = model.config.vision_config
    side = vision.image_size // vision.patch_size
    num_frames = inputs["pixel_values_videos"].shape[1]
    return num_frames * math.ceil(side / 2) ** 2 + 1


# --------------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture_name", VIDEO_FIXTURES)
def test_tiny_vlm_generates_from_real_clip(fixture_name, request, real_clip, video_inputs):
    model, processor = request.getfixturevalue(fixture_name)
    assert not model.training
    assert count_parameters(model) < 1_000_000

    inputs = video_inputs(processor, real_clip, QUESTION, num_frames=8)
    input_ids = inputs["input_ids"]
    video_token_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    num_video_tokens = int((input_ids == video_token_id).sum())
    assert num_video_tokens > 0
    assert num_video_tokens == _video_token_count(model, processor, inputs)
    assert num_video_tokens <= 64  # small enough for fast CPU tests

    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    prompt_length = input_ids.shape[1]
    assert torch.equal(output[:, :prompt_length], input_ids)
    new_tokens = output[0, prompt_length:]
    assert 1 <= new_tokens.numel() <= 8
    assert int(new_tokens.max()) < model.config.text_config.vocab_size
    if new_tokens.numel() < 8:  # stopping early is only allowed at the configured eos token
        assert int(new_tokens[-1]) == model.generation_config.eos_token_id

    again = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert torch.equal(again, output)  # greedy decoding is deterministic


def test_qwen3_vl_keeps_presampled_frames(tiny_qwen3_vl, real_clip, video_inputs):
    _, processor = tiny_qwen3_vl
    inputs = video_inputs(processor, real_clip, QUESTION, num_frames=8)
    # do_sample_frames=False: all 8 frames kept (4 temporal patches), each with its timestamp text.
    assert inputs["video_grid_thw"][0, 0].item() == 4
    prompt = processor.tokenizer.decode(inputs["input_ids"][0])
    # Timestamps are the mean time of each pair of frames (indices 0, 36, 71, 107, ... at 25 fps).
    assert prompt.count(" seconds>") == 4
    assert "<0.7 seconds>" in prompt
    # The processor expands only `<|video_pad|>`: the chat template's outer
    # `<|vision_start|>...<|vision_end|>` stays around the per-pair blocks (as with the official template).
    assert prompt.count("<|vision_start|>") == 1 + 4
    assert prompt.count("<|vision_end|>") == 1 + 4


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_mrope_section_sums_to_half_head_dim(family, real_clip, video_inputs):
    # A non-default head_dim (96 / 4 = 24) still gives a valid multimodal rotary split.
    model, processor = build_tiny(family, hidden_size=96, num_hidden_layers=1)
    text_config = model.config.text_config
    head_dim = text_config.hidden_size // text_config.num_attention_heads
    assert sum(text_config.rope_parameters["mrope_section"]) == head_dim // 2
    inputs = video_inputs(processor, real_clip, QUESTION, num_frames=4)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (*inputs["input_ids"].shape, text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_builders_are_deterministic_given_seed():
    first, _ = build_tiny("qwen2_5_vl", seed=0)
    second, _ = build_tiny("qwen2_5_vl", seed=0)
    other, _ = build_tiny("qwen2_5_vl", seed=1)
    state, same, different = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(state[name], same[name]) for name in state)
    assert not all(torch.equal(state[name], different[name]) for name in state)


def test_builders_do_not_touch_the_global_rng():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_tiny("qwen2_5_vl", seed=3)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("fixture_name", VIDEO_FIXTURES)
def test_vlm_save_and_auto_reload_give_identical_logits(
    fixture_name, request, real_clip, video_inputs, tmp_path
):
    model, processor = request.getfixturevalue(fixture_name)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded_model = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded_model) is type(model)
    assert type(reloaded_processor) is type(processor)
    assert type(reloaded_processor.video_processor) is type(processor.video_processor)
    assert reloaded_model.generation_config.eos_token_id == model.generation_config.eos_token_id

    inputs = video_inputs(processor, real_clip, QUESTION, num_frames=8)
    reloaded_inputs = video_inputs(reloaded_processor, real_clip, QUESTION, num_frames=8)
    assert inputs.keys() == reloaded_inputs.keys()
    for key in inputs:
        assert torch.equal(inputs[key], reloaded_inputs[key]), key
    with torch.no_grad():
        logits = model(**inputs).logits
        reloaded_logits = reloaded_model(**reloaded_inputs).logits
    torch.testing.assert_close(reloaded_logits, logits)


def test_llama_save_and_auto_reload_give_identical_logits(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    assert count_parameters(model) < 1_000_000
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded_model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Count to three."}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    assert reloaded_tokenizer(prompt, return_tensors="pt").input_ids.tolist() == inputs.input_ids.tolist()
    with torch.no_grad():
        torch.testing.assert_close(reloaded_model(**inputs).logits, model(**inputs).logits)
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert torch.equal(reloaded_model.generate(**inputs, max_new_tokens=8, do_sample=False), output)
    assert output.shape[1] > inputs.input_ids.shape[1]


# --------------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------------

# Regression pin, not a golden number of the code under test: these digests were computed from the five separate
# `build_tiny_<family>` functions that `build_tiny` replaced (commit f9ba82e, transformers 5.24, torch 2.14), so
# they prove the spec-driven builder makes exactly the old models. If a transformers or torch upgrade changes the
# random initialisation or the config serialisation, recompute them at the old commit with the same upgrade.
# (family, overrides, sha256 of the weights[:16], sha256 of config + generation config + processor[:16])
OLD_BUILDER_DIGESTS = [
    ("qwen2_5_vl", {}, "bce82195726a6613", "7f56712504c3fee0"),
    ("qwen2_5_vl", {"seed": 1}, "23d959b9c98458e3", "7f56712504c3fee0"),
    ("qwen2_5_vl", {"hidden_size": 96, "num_hidden_layers": 1}, "e048c0a40f7d2acf", "95650a29afbdddf3"),
    ("qwen2_vl", {}, "51695364ab1d3d30", "2f7e3d95be3dd36c"),
    ("qwen3_vl", {}, "d538d6f0b8c0c12a", "02694c6602cda31a"),
    ("qwen3_vl", {"hidden_size": 96, "num_hidden_layers": 1}, "e15ae0ead8bfebf5", "ebe01808644d0de9"),
    ("llava_onevision", {}, "b08d2dfeedf2b852", "77444a44c20342db"),
    ("llama", {}, "d7c3f4810f86a75b", "f15df951f55a53dc"),
    ("llama", {"seed": 3}, "4ec5bfd5e89d57d7", "f15df951f55a53dc"),
]


def _without_version(value):
    if isinstance(value, dict):
        return {key: _without_version(item) for key, item in value.items() if key != "transformers_version"}
    return value


def _config_digest(model, processor) -> str:
    parts = [model.config.to_json_string(), model.generation_config.to_json_string()]
    if hasattr(processor, "video_processor"):
        parts.append(processor.to_json_string())
    parts = [_without_version(json.loads(part)) for part in parts]
    parts += [str(len(getattr(processor, "tokenizer", processor))), model.config._attn_implementation]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


# The versions the digests were computed with (the README's install pins them); elsewhere the pins say nothing.
PINNED_WITH = {"torch": "2.14.1", "transformers": "5.24.0"}


def _installed(name: str) -> str:
    return importlib.metadata.version(name).split("+")[0]


@pytest.mark.skipif(
    any(_installed(name) != version for name, version in PINNED_WITH.items()),
    reason=f"the old builders' digests were computed with {PINNED_WITH}",
)
@pytest.mark.parametrize(("family", "overrides", "weights", "config"), OLD_BUILDER_DIGESTS)
def test_build_tiny_makes_exactly_the_models_of_the_old_builders(family, overrides, weights, config):
    model, processor = build_tiny(family, **overrides)
    assert weights_digest(model)[:16] == weights
    assert _config_digest(model, processor) == config


def test_build_tiny_reuses_a_given_tokenizer(tokenizer):
    _, processor = build_tiny("qwen2_vl", tokenizer=tokenizer, num_hidden_layers=1)
    assert processor.tokenizer is tokenizer


def test_unknown_family_lists_the_families():
    with pytest.raises(
        ValueError, match=r"Unknown tiny model family 'qwen4'.*qwen2_5_vl, qwen2_vl, qwen3_vl"
    ):
        build_tiny("qwen4")


@pytest.mark.parametrize(
    ("family", "option"),
    [("llama", "vision_depth"), ("qwen3_vl", "image_size"), ("llava_onevision", "max_pixels")],
)
def test_an_option_of_another_family_is_refused(family, option):
    with pytest.raises(TypeError, match=rf"build_tiny\('{family}'\)` got unknown options \['{option}'\]"):
        build_tiny(family, **{option: 1})


@pytest.mark.parametrize(
    ("family", "overrides", "message"),
    [
        ("qwen2_vl", {"hidden_size": 60, "num_attention_heads": 8}, r"hidden_size \(60\) must be divisible"),
        (
            "llama",
            {"num_key_value_heads": 3},
            r"num_attention_heads \(4\) must be divisible by num_key_value_heads",
        ),
        ("qwen2_5_vl", {"hidden_size": 20}, r"head_dim must be at least 6 .* got 5"),
        ("llava_onevision", {"image_size": 50}, r"patch_size \(14\) must divide image_size \(50\)"),
    ],
)
def test_inconsistent_sizes_are_refused(family, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_tiny(family, **overrides)


def test_a_spec_with_a_processor_class_but_no_processor_function_is_refused():
    spec = TINY_SPECS["qwen2_5_vl"]
    with pytest.raises(ValueError, match=r"TinySpec 'half': set both `processor_class` and `processor`"):
        TinySpec("half", spec.config_class, spec.model_class, spec.processor_class, spec.config)
