"""V-Reason Lite (SPEC section 5): the cache pruning on crafted caches, then on models: batches, every controller
scope, and what token 0 sees."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from vreason_hf.generation.controller import ValueController
from vreason_hf.generation.lite import prune_cache
from vreason_hf.generation.objective import entropy
from vreason_hf.generation.replay import ControlledDynamicLayer
from vreason_hf.inputs import build_inputs
from vreason_hf.testing import build_tiny_llava_onevision, greedy_vreason, real_clip_path
from vreason_hf.video import load_video

NEW_TOKENS = 12
QUESTIONS = ("Why?", "Describe every object that appears in this clip, in order.")


_vreason = partial(greedy_vreason, max_new_tokens=NEW_TOKENS)


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
        _prune([cache.layers[-1]], video, torch.ones_like(video, dtype=torch.bool), None, prune_ratio=0.5)
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


# ---------------------------------------------------------------------------------------------------------------
# prune_cache, without models


def _prune(*args, **kwargs):
    """`prune_cache` -> `(attention_mask, rows, valid)`, with the video rows as the controlled rows."""
    pruned = prune_cache(*args, **kwargs)
    return pruned.attention_mask, pruned.rows, pruned.valid


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _layer(keys: torch.Tensor, values: torch.Tensor) -> DynamicLayer:
    layer = DynamicLayer()
    layer.update(keys, values)
    return layer


def _crafted_values(norms: torch.Tensor, seed: int) -> torch.Tensor:
    """Random directions with the given per-vector norms; `norms` of shape (batch, heads, seq)."""
    directions = torch.randn(*norms.shape, 4, generator=_gen(seed))
    return directions / directions.norm(dim=-1, keepdim=True) * norms[..., None]


def _video_norms(
    batch_video: list[list[int]], num_layers: int, heads: int, seq: int, seed: int
) -> torch.Tensor:
    """(layers, batch, heads, seq) norms: distinct per video row, in a different order in every layer."""
    g = _gen(seed)
    norms = torch.rand(num_layers, len(batch_video), heads, seq, generator=g) + 0.5
    for layer in range(num_layers):
        for b, positions in enumerate(batch_video):
            ranks = torch.randperm(len(positions), generator=g).float() + 1.0
            norms[layer, b, :, positions] = ranks + 0.1 * torch.rand(heads, len(positions), generator=g)
    return norms


def _expected_kept(values: torch.Tensor, positions: list[int], keep: int) -> list[int]:
    """The `keep` positions with the highest value norm averaged over heads, in position order."""
    mean_norm = values[:, positions].norm(dim=-1).mean(0)
    order = torch.argsort(mean_norm, descending=True).tolist()
    return sorted(positions[i] for i in order[:keep])


def _build(batch_video, seq=10, num_layers=3, heads=2, seed=0):
    norms = _video_norms(batch_video, num_layers, heads, seq, seed)
    originals = []
    for layer in range(num_layers):
        keys = torch.randn(len(batch_video), heads, seq, 4, generator=_gen(seed + 100 + layer))
        originals.append((keys, _crafted_values(norms[layer], seed + 200 + layer)))
    layers = [_layer(k.clone(), v.clone()) for k, v in originals]
    width = max(len(p) for p in batch_video)
    rows = torch.zeros(len(batch_video), width, dtype=torch.long)
    valid = torch.zeros(len(batch_video), width, dtype=torch.bool)
    for b, positions in enumerate(batch_video):
        rows[b, : len(positions)] = torch.tensor(positions)
        valid[b, : len(positions)] = True
    return layers, originals, rows, valid


@pytest.mark.parametrize(("ratio", "keep"), [(0.5, 3), (0.25, 4), (0.75, 2), (0.9, 1)])
@pytest.mark.parametrize("scope", ["per_layer", "shared"])
def test_prune_keeps_the_highest_norm_video_rows(ratio, keep, scope):
    video = [2, 3, 4, 5, 6, 7]
    assert keep == round((1 - ratio) * len(video))
    layers, originals, rows, valid = _build([video])
    mask, new_rows, new_valid = _prune(layers, rows, valid, None, prune_ratio=ratio, scope=scope)

    assert mask is None  # one sample, no padding: nothing to mask
    non_video = [0, 1, 8, 9]
    target_kept = _expected_kept(originals[-1][1][0], video, keep)
    for layer, (keys, values) in zip(layers, originals, strict=True):
        kept = target_kept if scope == "shared" else _expected_kept(values[0], video, keep)
        positions = sorted(non_video + kept)  # non-video rows kept, order kept
        assert layer.values.shape == (1, 2, 10 - (6 - keep), 4)
        assert torch.equal(layer.values, values[:, :, positions])
        assert torch.equal(layer.keys, keys[:, :, positions])
    # The returned rows point at the surviving video rows of the target (last) layer.
    assert new_valid[0].sum() == keep
    surviving = new_rows[0, new_valid[0]]
    assert torch.equal(layers[-1].values[0][:, surviving], originals[-1][1][0][:, target_kept])
    assert torch.equal(layers[-1].keys[0][:, surviving], originals[-1][0][0][:, target_kept])


def test_prune_ranks_by_norm_averaged_over_heads():
    # Row 3 is the largest in head 0 but the smallest on average; row 4 the reverse.
    video = [3, 4]
    layers, originals, rows, valid = _build([video], num_layers=1)
    values = originals[0][1].clone()
    values[0, 0, 3] *= 10.0 / values[0, 0, 3].norm()
    values[0, 1, 3] *= 0.1 / values[0, 1, 3].norm()  # mean 5.05
    values[0, 0, 4] *= 1.0 / values[0, 0, 4].norm()
    values[0, 1, 4] *= 9.5 / values[0, 1, 4].norm()  # mean 5.25
    layers = [_layer(originals[0][0].clone(), values.clone())]
    _prune(layers, rows, valid, None, prune_ratio=0.5)
    assert torch.equal(layers[0].values, values[:, :, [0, 1, 2, 4, 5, 6, 7, 8, 9]])


def test_prune_shared_uses_the_target_layer_ranking():
    video = [2, 3, 4, 5, 6, 7]
    layers, originals, rows, valid = _build([video], num_layers=3, seed=3)
    per_layer_kept = [_expected_kept(v[0], video, 3) for _, v in originals]
    assert len({tuple(k) for k in per_layer_kept}) > 1  # the layers disagree, so the scope matters
    _prune(layers, rows, valid, None, prune_ratio=0.5, scope="shared", target_index=0)
    positions = sorted([0, 1, 8, 9] + per_layer_kept[0])
    for layer, (_, values) in zip(layers, originals, strict=True):
        assert torch.equal(layer.values, values[:, :, positions])


def test_prune_ratio_zero_changes_nothing():
    layers, originals, rows, valid = _build([[2, 3, 4, 5], [1, 2, 3, 4]])
    mask, new_rows, new_valid = _prune(layers, rows, valid, None, prune_ratio=0.0)
    assert mask is None
    for layer, (keys, values) in zip(layers, originals, strict=True):
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)
    assert torch.equal(new_rows[new_valid], rows[valid]) and torch.equal(new_valid, valid)


@pytest.mark.parametrize("scope", ["per_layer", "shared"])
def test_prune_batch_with_left_padding_and_different_counts(scope):
    # Sample 0: 2 padded slots, 4 video rows (keeps 2, drops 2). Sample 1: no padding, 6 video rows (keeps 3,
    # drops 3). The new length is 10 - 2 = 8, so sample 1 gets one masked slot on the left.
    batch_video = [[4, 5, 6, 7], [2, 3, 4, 5, 6, 7]]
    layers, originals, rows, valid = _build(batch_video, seed=5)
    attention_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [1] * 10])
    mask, new_rows, new_valid = _prune(layers, rows, valid, attention_mask, prune_ratio=0.5, scope=scope)

    assert torch.equal(mask, torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1]]))
    keeps, offsets = [2, 3], [0, 1]
    non_video = [[0, 1, 2, 3, 8, 9], [0, 1, 8, 9]]
    for b in range(2):
        target_kept = _expected_kept(originals[-1][1][b], batch_video[b], keeps[b])
        for layer, (keys, values) in zip(layers, originals, strict=True):
            kept = target_kept if scope == "shared" else _expected_kept(values[b], batch_video[b], keeps[b])
            positions = sorted(non_video[b] + kept)
            assert torch.equal(layer.values[b, :, offsets[b] :], values[b][:, positions])
            assert torch.equal(layer.keys[b, :, offsets[b] :], keys[b][:, positions])
        assert new_valid[b].sum() == keeps[b]
        assert not new_valid[b, keeps[b] :].any()  # valid entries are left-aligned
        surviving = new_rows[b, new_valid[b]]
        assert (mask[b, surviving] == 1).all()
        assert torch.equal(layers[-1].values[b][:, surviving], originals[-1][1][b][:, target_kept])


def test_prune_without_mask_masks_only_the_new_left_slots():
    batch_video = [[2, 3], [2, 3, 4, 5, 6, 7]]  # drops 1 and 3 rows
    layers, _, rows, valid = _build(batch_video, seed=7)
    mask, _, _ = _prune(layers, rows, valid, None, prune_ratio=0.5)
    assert torch.equal(mask, torch.tensor([[1] * 9, [0, 0] + [1] * 7]))
    assert all(layer.values.shape[-2] == 9 for layer in layers)


def test_prune_with_equal_counts_keeps_the_given_mask():
    batch_video = [[4, 5, 6, 7], [2, 3, 4, 5]]
    layers, _, rows, valid = _build(batch_video, seed=8)
    attention_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [1] * 10])
    mask, _, _ = _prune(layers, rows, valid, attention_mask, prune_ratio=0.5)
    # Both samples drop 2 rows, none of them padding: the padding of sample 0 survives, nothing new is masked.
    assert torch.equal(mask, torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8]))


def test_prune_rows_feed_a_controller_on_the_pruned_cache():
    batch_video = [[4, 5, 6, 7], [2, 3, 4, 5, 6, 7]]
    layers, _, rows, valid = _build(batch_video, seed=9)
    _, new_rows, new_valid = _prune(layers, rows, valid, None, prune_ratio=0.5)
    values = layers[-1].values
    controller = ValueController(new_rows, new_valid, values.shape[1], values.shape[-1], lr=0.5)
    controller.adam_step(torch.randn(controller.theta.shape, generator=_gen(10)), torch.tensor([True, True]))
    out = controller.apply(values)
    for b in range(2):
        changed = (out[b] != values[b]).any(-1).any(0)  # (seq,)
        assert changed.nonzero().flatten().tolist() == sorted(new_rows[b, new_valid[b]].tolist())


# ---------------------------------------------------------------------------------------------------------------
# Lite through the loop, on the shared tiny Qwen2.5-VL


@pytest.mark.parametrize("scope", ["per_layer", "shared"])
def test_lite_keeps_the_rounded_share_of_video_rows_in_every_layer(qwen, scope):
    model, _, inputs = qwen
    n_video = int((inputs["input_ids"] == model.config.video_token_id).sum())
    prompt = inputs["input_ids"].shape[1]
    ratio = 0.3
    kept = round((1 - ratio) * n_video)
    out = _vreason(
        model,
        inputs,
        {"lite": True, "prune_ratio": ratio, "prune_scope": scope},
        return_dict_in_generate=True,
    )
    generated = out.sequences.shape[1] - prompt
    for layer in out.cache.layers:
        # The cache holds every token but the last generated one.
        assert layer.keys.shape[-2] == prompt - n_video + kept + generated - 1
        assert layer.values.shape[-2] == layer.keys.shape[-2]
    assert type(out.cache.layers[-1]) is not ControlledDynamicLayer


def test_lite_with_nothing_to_prune_equals_plain_v_reason(qwen):
    model, _, inputs = qwen
    config = {"lr": 0.2}
    assert torch.equal(
        _vreason(model, inputs, {**config, "lite": True, "prune_ratio": 0.0}), _vreason(model, inputs, config)
    )
