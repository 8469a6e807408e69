"""Model inputs (`vreason_hf.inputs`): Video-R1's frame defaults, transformers' documented processor route, left
padding, metadata handling and the errors of bad input."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from transformers.video_utils import VideoMetadata

from vreason_hf import inputs as inputs_module
from vreason_hf.inputs import Prompt, build_batch_inputs, build_inputs, frame_sampling
from vreason_hf.testing import build_tiny_llama
from vreason_hf.video import load_video

QUESTION = "What happens in the video?"


def _by_hand(processor, frames, metadata, question=QUESTION):
    """The inputs transformers documents for pre-sampled frames: chat template, frames, metadata, no re-sampling."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(
        text=[text],
        videos=[frames],
        video_metadata=[copy.deepcopy(metadata)],
        do_sample_frames=False,
        return_tensors="pt",
    )


def _assert_same(actual, expected) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize("family", ["tiny_qwen2_5_vl", "tiny_qwen3_vl"])
def test_a_video_file_is_sampled_as_video_r1_evaluates(family, real_clip, request):
    _, processor = request.getfixturevalue(family)
    frames, metadata = load_video(real_clip, fps=2.0, max_frames=16)  # Video-R1: 2 fps, at most 16 frames
    assert len(frames) == 16  # bikes.mp4 lasts 10 s: 20 frames at 2 fps, capped
    _assert_same(build_inputs(processor, QUESTION, video=real_clip), _by_hand(processor, frames, metadata))
    assert frame_sampling() == (None, 2.0, 16)


def test_frames_go_to_the_processor_with_their_metadata_which_is_left_unchanged(tiny_qwen2_5_vl, real_clip):
    _, processor = tiny_qwen2_5_vl
    frames, metadata = load_video(real_clip, num_frames=8)
    before = copy.deepcopy(metadata)
    inputs = build_inputs(processor, QUESTION, video=frames, video_metadata=metadata)
    _assert_same(inputs, _by_hand(processor, frames, metadata))
    # 8 frames spread over 250 frames at 25 fps: sampled at 0.8 fps, so one temporal patch of 2 frames spans 2.5 s.
    # Without the metadata the processor would assume 24 fps (0.083 s).
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2.5])
    assert metadata == before  # processors write into the metadata they get: they get a copy
    _assert_same(build_inputs(processor, QUESTION, video=real_clip, num_frames=8), inputs)


def test_a_batch_is_left_padded_and_each_row_is_its_single_input(tiny_qwen2_5_vl, real_clip):
    _, processor = tiny_qwen2_5_vl
    processor.tokenizer.padding_side = (
        "right"  # the batch is padded on the left whatever the tokenizer's default
    )
    try:
        prompts = [
            Prompt("Why?", video=real_clip),
            Prompt("Where are the people riding to, and why?", real_clip),
        ]
        batch = build_batch_inputs(processor, prompts, num_frames=4)
        singles = [build_inputs(processor, p.text, video=p.video, num_frames=4) for p in prompts]
    finally:
        processor.tokenizer.padding_side = "left"
    mask = batch["attention_mask"]
    assert bool(mask[:, -1].all()) and mask[0, 0] == 0
    for row, single in enumerate(singles):
        assert torch.equal(batch["input_ids"][row][mask[row].bool()], single["input_ids"][0])
    assert torch.equal(batch["pixel_values_videos"], torch.cat([s["pixel_values_videos"] for s in singles]))


def test_text_only_tokenizers_go_through_their_chat_template_and_pad_on_the_left():
    _, tokenizer = build_tiny_llama()
    tokenizer.padding_side = "right"
    single = build_inputs(tokenizer, "hi")
    chat = [{"role": "user", "content": "hi"}]
    expected = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    assert torch.equal(single["input_ids"], expected["input_ids"])
    batch = build_batch_inputs(tokenizer, [Prompt("hi"), Prompt("hello there, how are you today?")])
    mask = batch["attention_mask"]
    assert mask[0, 0] == 0 and bool(mask[:, -1].all())
    assert torch.equal(batch["input_ids"][0][mask[0].bool()], single["input_ids"][0])


def test_frames_without_metadata_are_warned_about_and_batch_with_frames_that_have_it(
    tiny_qwen2_5_vl, real_clip, caplog
):
    _, processor = tiny_qwen2_5_vl
    frames, metadata = load_video(real_clip, num_frames=4)
    inputs_module._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=inputs_module.__name__):
        bare = build_inputs(processor, QUESTION, video=frames)
        mixed = build_batch_inputs(processor, [Prompt(QUESTION, frames, metadata), Prompt(QUESTION, frames)])
    assert "came without `video_metadata`" in caplog.text
    assert bare["second_per_grid_ts"].tolist() == pytest.approx([2 / 24])  # the processor's 24 fps fallback
    timed = build_inputs(processor, QUESTION, video=frames, video_metadata=metadata)
    assert mixed["second_per_grid_ts"].tolist() == pytest.approx(
        [5.0, 2 / 24]
    )  # 4 frames over 10 s: 5 s a patch
    assert timed["second_per_grid_ts"].tolist() == pytest.approx([5.0])
    no_rate = VideoMetadata(total_num_frames=len(frames), fps=None, frames_indices=list(range(len(frames))))
    _assert_same(bare, _by_hand(processor, frames, no_rate))


def test_bad_input_is_a_clear_error(tiny_qwen2_5_vl, real_clip):
    _, processor = tiny_qwen2_5_vl
    _, tokenizer = build_tiny_llama()
    with pytest.raises(ValueError, match="is a text-only tokenizer: it cannot take a video"):
        build_inputs(tokenizer, QUESTION, video=real_clip)
    with pytest.raises(ValueError, match="`num_frames` and `fps` are mutually exclusive"):
        build_inputs(processor, QUESTION, video=real_clip, num_frames=4, fps=1.0)
    with pytest.raises(ValueError, match="non-empty sequence of `Prompt`"):
        build_batch_inputs(processor, [])
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="has no padding token"):
        build_batch_inputs(tokenizer, [Prompt("a"), Prompt("bb")])
