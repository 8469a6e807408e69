"""V-Reason Lite on batches, under every controller scope, and what token 0 sees."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import DynamicCache

from vreason_hf import vreason_generate
from vreason_hf.generation.lite import prune_video_rows
from vreason_hf.generation.objective import entropy
from vreason_hf.inputs import build_inputs
from vreason_hf.testing import build_tiny_llava_onevision, real_clip_path
from vreason_hf.video import load_video

NEW_TOKENS = 12
QUESTIONS = ("Why?", "Describe every object that appears in this clip, in order.")


def _vreason(model, inputs, knobs, **kwargs):
    return model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=knobs,
        **kwargs,
    )


def _user(*items):
    return [{"role": "user", "content": list(items)}]


@pytest.mark.parametrize(
    ("clips", "knobs"),
    [
        # Same clip: both rows drop as many rows; the shorter prompt is left-padded.
        ((("bikes.mp4", 8), ("bikes.mp4", 8)), {"lite": True, "lr": 0.2}),
        # Different clips and lengths: the rows drop different numbers of rows, so pruning adds masked slots.
        (
            (("bikes.mp4", 8), ("carphone_pristine.mp4", 4)),
            {"lite": True, "lr": 0.2, "prune_scope": "shared"},
        ),
    ],
    ids=["same-clip", "different-clips"],
)
def test_batched_lite_equals_each_row_alone(tiny_qwen2_5_vl, clips, knobs):
    model, processor = tiny_qwen2_5_vl
    videos = [load_video(real_clip_path(name), num_frames=n) for name, n in clips]
    single = [
        build_inputs(processor, question, video=frames, video_metadata=metadata)
        for (frames, metadata), question in zip(videos, QUESTIONS, strict=True)
    ]
    texts = [
        processor.apply_chat_template(
            _user({"type": "video"}, {"type": "text", "text": q}), add_generation_prompt=True
        )
        for q in QUESTIONS
    ]
    side, processor.tokenizer.padding_side = processor.tokenizer.padding_side, "left"
    try:
        batch = processor(
            text=texts,
            videos=[frames for frames, _ in videos],
            video_metadata=[copy.deepcopy(metadata) for _, metadata in videos],
            do_sample_frames=False,
            padding=True,
            return_tensors="pt",
        )
    finally:
        processor.tokenizer.padding_side = side
    assert batch["attention_mask"][0, 0] == 0  # left-padded

    batched = _vreason(model, batch, knobs)
    pad = model.generation_config.pad_token_id
    for row, inputs in enumerate(single):
        alone = _vreason(model, inputs, knobs)[0, inputs["input_ids"].shape[1] :]
        got = batched[row, batch["input_ids"].shape[1] :]
        assert torch.equal(got[: alone.numel()], alone), row
        assert bool((got[alone.numel() :] == pad).all())


def test_token_0_is_scored_over_the_pruned_cache():
    """With rows dropped, token 0's entropy and choice see the pruned cache at the last layer (the layers below
    ran on the full prompt): exactly a forward of the last prompt token after pruning only the last layer."""
    model, processor = build_tiny_llava_onevision()  # 1D positions: the prompt can be fed in two pieces
    frames, metadata = load_video(real_clip_path("bikes.mp4"), num_frames=8)
    inputs = build_inputs(processor, "What happens?", video=frames, video_metadata=metadata)
    ids = inputs["input_ids"]
    vision = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    with torch.no_grad():
        full = model(**inputs).logits[:, -1].float()
        cache = DynamicCache(config=model.config)
        model(input_ids=ids[:, :-1], cache=cache, **vision)
        video = (ids[:, :-1] == model.config.video_token_id).nonzero()[:, 1][None]
        prune_video_rows(
            [cache.layers[-1]], video, torch.ones_like(video, dtype=torch.bool), None, prune_ratio=0.5
        )
        expected = model(input_ids=ids[:, -1:], cache=cache).logits[:, -1].float()
    assert not torch.allclose(expected, full, atol=1e-3)  # pruning matters at token 0

    out = _vreason(
        model,
        inputs,
        {"lite": True, "num_steps": 0},
        return_dict_in_generate=True,
        output_logits=True,
    )
    assert torch.allclose(
        out.logits[0], expected, atol=1e-5, rtol=0
    )  # the distribution token 0 is chosen from
    assert torch.allclose(out.entropies[:, 0], entropy(expected), atol=1e-5, rtol=0)  # ... and its entropy


@pytest.fixture(scope="module")
def image_and_video(tiny_qwen2_5_vl):
    """Inputs with an image, a video and text, the positions of the video and image rows, and the plain cache."""
    model, processor = tiny_qwen2_5_vl
    frames, metadata = load_video(real_clip_path("bikes.mp4"), num_frames=8)
    text = processor.apply_chat_template(
        _user({"type": "image"}, {"type": "video"}, {"type": "text", "text": "Compare them."}),
        add_generation_prompt=True,
    )
    inputs = processor(
        text=[text],
        images=[frames[0]],
        videos=[frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        return_tensors="pt",
    )
    ids = inputs["input_ids"][0]
    plain = _vreason(model, inputs, {"num_steps": 0}, return_dict_in_generate=True)
    return inputs, ids == model.config.video_token_id, ids == model.config.image_token_id, plain.cache


@pytest.mark.parametrize("scope", ["video", "visual", "prompt"])
def test_lite_prunes_only_video_rows_whatever_the_scope(tiny_qwen2_5_vl, image_and_video, scope):
    model, _ = tiny_qwen2_5_vl
    inputs, video, image, plain_cache = image_and_video
    prompt = video.numel()
    kept = round(0.5 * int(video.sum()))
    dropped = int(video.sum()) - kept
    out = _vreason(
        model, inputs, {"lite": True, "lr": 0.2, "controller_scope": scope}, return_dict_in_generate=True
    )

    # Which prompt rows of the full prefill are still in the pruned cache (matched by their exact key vectors).
    full = plain_cache.layers[0].keys[0, :, :prompt]
    pruned = out.cache.layers[0].keys[0, :, : prompt - dropped]
    present = (full[:, :, None] == pruned[:, None]).all(-1).all(0).any(-1)
    assert bool(present[~video].all())  # every text and image row survives
    assert int(present[video].sum()) == kept
    # The controller covers the surviving rows of its scope.
    controlled = int(out.controller_state["valid"].sum())
    assert controlled == {"video": kept, "visual": kept + int(image.sum()), "prompt": prompt - dropped}[scope]


def test_lite_refuses_an_input_without_video_under_every_scope(tiny_qwen2_5_vl, tiny_llama):
    model, processor = tiny_qwen2_5_vl
    text_only = processor(text=["no video here"], return_tensors="pt")
    with pytest.raises(
        ValueError, match=r"`lite=True` prunes video tokens, but the input of batch row\(s\) \[0\]"
    ):
        _vreason(model, text_only, {"lite": True, "controller_scope": "prompt"})
    llama, tokenizer = tiny_llama
    with pytest.raises(ValueError, match=r"`lite=True` prunes video tokens.*set `lite=False`"):
        _vreason(
            llama, tokenizer(["hello"], return_tensors="pt"), {"lite": True, "controller_scope": "prompt"}
        )
    image_only = processor(
        text=[processor.apply_chat_template(_user({"type": "image"}, {"type": "text", "text": "Hi"}))],
        images=[load_video(real_clip_path("bikes.mp4"), num_frames=1)[0][0]],
        return_tensors="pt",
    )
    with pytest.raises(ValueError, match=r"`lite=True` prunes video tokens.*controller_scope='visual'"):
        _vreason(model, image_only, {"lite": True, "controller_scope": "visual"})
