"""The controller (SPEC section 2), the controlled rows, and V-Reason Lite's pruning (SPEC section 5), without models."""

from __future__ import annotations

import types

import pytest
import torch
from transformers.cache_utils import DynamicLayer

from vreason_hf.generation.controller import ValueController, norm_preserving_update
from vreason_hf.generation.engine import controlled_rows
from vreason_hf.generation.lite import prune_video_rows

VID, IMG, PAD = 9, 8, 0
VL_CONFIG = types.SimpleNamespace(video_token_id=VID, image_token_id=IMG)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# norm_preserving_update


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 3, 5, 16), (1, 1, 1, 2)])
def test_norm_preserving_update_keeps_norms_and_takes_the_direction_of_v_plus_delta(shape):
    values = torch.randn(shape, generator=_gen(0))
    delta = torch.randn(shape, generator=_gen(1))
    out = norm_preserving_update(values, delta)
    assert out.shape == values.shape
    torch.testing.assert_close(out.norm(dim=-1), values.norm(dim=-1), rtol=1e-5, atol=1e-6)
    shifted = values + delta
    torch.testing.assert_close(
        out / out.norm(dim=-1, keepdim=True),
        shifted / shifted.norm(dim=-1, keepdim=True),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("shape", [(8,), (2, 3, 5, 16)])
def test_norm_preserving_update_with_zero_delta_is_identity(shape):
    values = torch.randn(shape, generator=_gen(2)) * 10
    torch.testing.assert_close(
        norm_preserving_update(values, torch.zeros(shape)), values, rtol=1e-6, atol=1e-6
    )


def test_norm_preserving_update_hand_value():
    # V = (3, 4), ‖V‖ = 5; V + ΔV = (0, 4) → direction (0, 1) → V̂ = (0, 5).
    out = norm_preserving_update(torch.tensor([3.0, 4.0]), torch.tensor([-3.0, 0.0]))
    torch.testing.assert_close(out, torch.tensor([0.0, 5.0]))


def test_norm_preserving_update_broadcasts_and_promotes():
    values = torch.randn(2, 3, 4, 8, generator=_gen(3)).bfloat16()
    delta = torch.randn(8, generator=_gen(4))
    out = norm_preserving_update(values, delta)
    assert out.dtype == torch.float32 and out.shape == values.shape
    # ‖V‖ is taken in the dtype of `values`, so the kept norm carries bfloat16 rounding.
    torch.testing.assert_close(out.norm(dim=-1), values.float().norm(dim=-1), rtol=1e-2, atol=1e-2)


def test_norm_preserving_update_cancelling_delta_gives_zero_not_nan():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = norm_preserving_update(values, torch.tensor([[-1.0, -2.0], [0.0, 0.0]]))
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros(2))


def test_norm_preserving_update_does_not_mutate():
    values, delta = torch.randn(4, 8, generator=_gen(5)), torch.randn(4, 8, generator=_gen(6))
    saved = values.clone(), delta.clone()
    norm_preserving_update(values, delta)
    assert torch.equal(values, saved[0]) and torch.equal(delta, saved[1])


# ---------------------------------------------------------------------------------------------------------------
# ValueController

BATCH, HEADS, SEQ, HEAD_DIM = 2, 3, 10, 8
ROWS = torch.tensor([[2, 5, 7], [1, 4, 0]])  # sample 1 has two rows; its padded entry points at position 0
VALID = torch.tensor([[True, True, True], [True, True, False]])


def _controller(**kwargs) -> ValueController:
    return ValueController(ROWS, VALID, HEADS, HEAD_DIM, **kwargs)


def _values(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(BATCH, HEADS, SEQ, HEAD_DIM, generator=_gen(seed)).to(dtype)


def _grad(controller: ValueController, seed: int) -> torch.Tensor:
    return torch.randn(controller.theta.shape, generator=_gen(seed))


def _controlled_mask() -> torch.Tensor:
    """(batch, seq) bool: the positions each sample's controller really covers."""
    mask = torch.zeros(BATCH, SEQ, dtype=torch.bool)
    for b in range(BATCH):
        mask[b, ROWS[b, VALID[b]]] = True
    return mask


def test_controller_starts_at_zero():
    controller = _controller()
    assert controller.is_zero
    assert controller.theta.shape == (BATCH, HEADS, 3, HEAD_DIM)
    assert torch.equal(controller.delta(), torch.zeros(BATCH, HEADS, 3, HEAD_DIM))
    assert controller.steps.tolist() == [0, 0]


def test_controller_rejects_mismatched_rows_and_valid():
    with pytest.raises(ValueError, match=r"`rows` and `valid` must both have shape \(batch, num_rows\)"):
        ValueController(ROWS, VALID[:, :2], HEADS, HEAD_DIM)
    with pytest.raises(ValueError, match=r"`rows` and `valid` must both have shape"):
        ValueController(ROWS[0], VALID[0], HEADS, HEAD_DIM)


def test_apply_returns_the_same_object_until_the_first_step():
    controller = _controller()
    values = _values()
    assert controller.apply(values) is values
    controller.adam_step(torch.zeros_like(controller.theta), torch.tensor([False, False]))
    assert controller.apply(values) is values  # a step that selects no row is no step


def test_apply_forced_at_zero_is_identity_up_to_rounding():
    controller = _controller()
    values = _values()
    out = controller.apply(values, force=True)
    assert out is not values
    torch.testing.assert_close(out, values, rtol=1e-6, atol=1e-6)
    mask = _controlled_mask()
    assert torch.equal(out.transpose(1, 2)[~mask], values.transpose(1, 2)[~mask])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_apply_changes_only_controlled_rows_and_keeps_their_norms(dtype):
    controller = _controller(lr=0.5)
    controller.adam_step(_grad(controller, 1), torch.tensor([True, True]))
    values = _values(dtype=dtype)
    saved = values.clone()
    out = controller.apply(values)

    assert torch.equal(values, saved)  # input never mutated
    assert out.dtype == dtype and out.shape == values.shape
    mask = _controlled_mask()  # (batch, seq)
    per_row_out, per_row_in = out.transpose(1, 2), values.transpose(1, 2)  # (batch, seq, heads, head_dim)
    # Not controlled (including sample 1's padded entry at position 0): bit-identical.
    assert torch.equal(per_row_out[~mask], per_row_in[~mask])
    # Controlled: every vector moved, norm kept.
    changed = (per_row_out[mask].float() - per_row_in[mask].float()).abs().amax(-1)  # (n, heads)
    assert (changed > 0).all()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(
        per_row_out[mask].float().norm(dim=-1), per_row_in[mask].float().norm(dim=-1), rtol=tol, atol=tol
    )


def test_apply_matches_norm_preserving_update_of_delta():
    controller = _controller(lr=0.3, scale=torch.tensor([2.0, 0.5]))
    controller.adam_step(_grad(controller, 2), torch.tensor([True, True]))
    values = _values(3)
    out = controller.apply(values)
    delta = controller.delta()
    for b in range(BATCH):
        for j in range(int(VALID[b].sum())):
            pos = int(ROWS[b, j])
            torch.testing.assert_close(
                out[b, :, pos], norm_preserving_update(values[b, :, pos], delta[b, :, j])
            )


def test_apply_is_differentiable_in_theta():
    controller = _controller()
    values = _values()
    controller.apply(values, force=True).sum().backward()
    assert controller.theta.grad is not None
    assert controller.theta.grad.abs().sum() > 0
    # Padded entries get no gradient: ΔV is zero there whatever θ is.
    assert torch.equal(controller.theta.grad[1, :, 2], torch.zeros(HEADS, HEAD_DIM))


def test_apply_controls_a_valid_row_that_padding_duplicates():
    # Sample 1 starts with its only video token: its padded entries (0) duplicate its valid row 0.
    input_ids = torch.tensor([[1, VID, VID, VID], [VID, 2, 3, 4]])
    rows, valid = controlled_rows(VL_CONFIG, input_ids, None, "video")
    controller = ValueController(rows, valid, 2, 4, lr=0.5)
    controller.adam_step(torch.randn(controller.theta.shape, generator=_gen(4)), torch.tensor([True, True]))
    values = torch.randn(2, 2, 4, 4, generator=_gen(5))
    out = controller.apply(values)
    assert not torch.equal(out[1, :, 0], values[1, :, 0])


def test_delta_scales_with_scale():
    grad = _grad(_controller(), 6)
    unit = _controller(lr=0.1)
    scaled = _controller(lr=0.1, scale=torch.tensor([2.0, 0.25]))
    for controller in (unit, scaled):
        controller.adam_step(grad, torch.tensor([True, True]))
    # θ does not depend on the scale (Adam runs on θ); ΔV = scale · θ.
    torch.testing.assert_close(scaled.theta, unit.theta)
    torch.testing.assert_close(scaled.delta()[0], 2.0 * unit.delta()[0])
    torch.testing.assert_close(scaled.delta()[1], 0.25 * unit.delta()[1])
    expected = scaled.theta * torch.tensor([2.0, 0.25])[:, None, None, None] * VALID[:, None, :, None]
    torch.testing.assert_close(scaled.delta(), expected)
    # The padded entry of sample 1 had a non-zero gradient, so θ moved there, but ΔV stays zero.
    assert scaled.theta[1, :, 2].abs().sum() > 0
    assert torch.equal(scaled.delta()[1, :, 2], torch.zeros(HEADS, HEAD_DIM))


def test_first_adam_step_moves_each_element_by_lr():
    # Bias-corrected Adam: the first update is lr · g / (|g| + eps) ≈ lr · sign(g).
    controller = _controller(lr=0.01)
    grad = _grad(controller, 7)
    controller.adam_step(grad, torch.tensor([True, True]))
    torch.testing.assert_close(controller.theta.detach(), -0.01 * grad.sign(), rtol=1e-5, atol=1e-7)


# Adam's bias corrections 1 - β^t are computed with expm1 (plain float32 1 - 0.999**t is off by ~1e-5
# relative); the loose tolerance is a second guard next to the exact 1e-6 test below.
ADAM_TOL = {"rtol": 5e-5, "atol": 1e-6}


def _run_against_torch_adam(lr, betas, eps, tol):
    controller = _controller(lr=lr, betas=betas, eps=eps)
    reference = torch.nn.Parameter(torch.zeros_like(controller.theta))
    optimizer = torch.optim.Adam([reference], lr=lr, betas=betas, eps=eps)
    for step in range(6):
        grad = _grad(controller, 100 + step) * (step + 1)
        controller.adam_step(grad, torch.tensor([True, True]))
        reference.grad = grad.clone()
        optimizer.step()
        torch.testing.assert_close(controller.theta.detach(), reference.detach(), **tol)
    state = optimizer.state[reference]
    torch.testing.assert_close(controller.exp_avg, state["exp_avg"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(controller.exp_avg_sq, state["exp_avg_sq"], rtol=1e-6, atol=1e-6)
    assert controller.steps.tolist() == [6, 6]


@pytest.mark.parametrize(("lr", "betas", "eps"), [(0.05, (0.9, 0.999), 1e-8), (0.3, (0.5, 0.9), 1e-3)])
def test_adam_step_matches_torch_adam(lr, betas, eps):
    _run_against_torch_adam(lr, betas, eps, ADAM_TOL)


def test_adam_step_matches_torch_adam_to_1e_6():
    _run_against_torch_adam(0.05, (0.9, 0.999), 1e-8, {"rtol": 0.0, "atol": 1e-6})


def test_adam_step_lr_override():
    a, b = _controller(lr=0.05), _controller(lr=0.2)
    grad = _grad(a, 8)
    a.adam_step(grad, torch.tensor([True, True]), lr=0.2)
    b.adam_step(grad, torch.tensor([True, True]))
    assert torch.equal(a.theta, b.theta)
    assert a.lr == 0.05


def test_adam_step_only_touches_selected_rows():
    """Row 0 steps every time; row 1 only on some steps, and must match an Adam that only saw those steps."""
    lr, betas, eps = 0.1, (0.9, 0.999), 1e-8
    controller = _controller(lr=lr, betas=betas, eps=eps)
    refs = [torch.nn.Parameter(torch.zeros_like(controller.theta[b])) for b in range(BATCH)]
    optimizers = [torch.optim.Adam([ref], lr=lr, betas=betas, eps=eps) for ref in refs]
    pattern = [(True, True), (True, False), (True, False), (True, True), (False, True), (True, False)]
    for step, selected in enumerate(pattern):
        grad = _grad(controller, 200 + step)
        before = {
            name: getattr(controller, name).detach().clone() for name in ("theta", "exp_avg", "exp_avg_sq")
        }
        steps_before = controller.steps.clone()
        controller.adam_step(grad, torch.tensor(selected))
        for b, chosen in enumerate(selected):
            if chosen:
                refs[b].grad = grad[b].clone()
                optimizers[b].step()
            else:
                for name, tensor in before.items():
                    assert torch.equal(getattr(controller, name)[b], tensor[b]), name
                assert controller.steps[b] == steps_before[b]
            torch.testing.assert_close(controller.theta[b].detach(), refs[b].detach(), **ADAM_TOL)
    assert controller.steps.tolist() == [5, 3]


def test_stepping_row_0_does_not_change_row_1():
    controller = _controller(lr=0.5)
    values = _values(9)
    grad = _grad(controller, 10)
    grad[1] = 0.0
    controller.adam_step(grad, torch.tensor([True, True]))
    assert torch.equal(controller.theta[1], torch.zeros_like(controller.theta[1]))
    out = controller.apply(values)
    assert not torch.equal(out[0], values[0])
    assert torch.equal(out[1], values[1])


def test_batched_controller_equals_single_row_controllers():
    scale = torch.tensor([1.5, 0.5])
    batched = _controller(lr=0.2, scale=scale)
    singles = [
        ValueController(ROWS[b : b + 1], VALID[b : b + 1], HEADS, HEAD_DIM, lr=0.2, scale=scale[b : b + 1])
        for b in range(BATCH)
    ]
    values = _values(11)
    for step in range(4):
        grad = _grad(batched, 300 + step)
        batched.adam_step(grad, torch.tensor([True, True]))
        for b, single in enumerate(singles):
            single.adam_step(grad[b : b + 1], torch.tensor([True]))
    out = batched.apply(values)
    for b, single in enumerate(singles):
        torch.testing.assert_close(batched.theta[b : b + 1], single.theta, rtol=0, atol=0)
        torch.testing.assert_close(out[b : b + 1], single.apply(values[b : b + 1]), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# controlled_rows

# Left-padded batch with a different number of video / image / prompt tokens per sample.
INPUT_IDS = torch.tensor(
    [
        [PAD, PAD, 1, VID, VID, IMG, 2],
        [1, VID, VID, VID, IMG, IMG, 2],
        [PAD, 1, VID, 2, 3, IMG, 4],
    ]
)
ATTENTION_MASK = torch.tensor(
    [
        [0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
        [0, 1, 1, 1, 1, 1, 1],
    ]
)


def _check_rows(rows, valid, expected):
    assert rows.dtype == torch.long and valid.dtype == torch.bool
    assert rows.shape == valid.shape == (len(expected), max(len(e) for e in expected))
    assert valid.sum(-1).tolist() == [len(e) for e in expected]
    for b, positions in enumerate(expected):
        assert valid[b].tolist() == [j < len(positions) for j in range(rows.shape[1])]  # left-aligned
        assert rows[b, valid[b]].tolist() == positions
        # Padded entries never point at one of the sample's own controlled positions.
        assert not set(rows[b, ~valid[b]].tolist()) & set(positions)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("video", [[3, 4], [1, 2, 3], [2]]),
        ("visual", [[3, 4, 5], [1, 2, 3, 4, 5], [2, 5]]),
        ("prompt", [[2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]),
    ],
)
def test_controlled_rows(scope, expected):
    rows, valid = controlled_rows(VL_CONFIG, INPUT_IDS, ATTENTION_MASK, scope)
    _check_rows(rows, valid, expected)


def test_controlled_rows_prompt_scope_without_mask_covers_everything():
    rows, valid = controlled_rows(types.SimpleNamespace(), INPUT_IDS, None, "prompt")
    _check_rows(rows, valid, [list(range(7))] * 3)


def test_controlled_rows_video_scope_ignores_the_mask():
    rows, valid = controlled_rows(VL_CONFIG, INPUT_IDS, None, "video")
    _check_rows(rows, valid, [[3, 4], [1, 2, 3], [2]])


def test_controlled_rows_visual_scope_with_only_an_image_token_id():
    config = types.SimpleNamespace(image_token_id=IMG)
    rows, valid = controlled_rows(config, INPUT_IDS, ATTENTION_MASK, "visual")
    _check_rows(rows, valid, [[5], [4, 5], [5]])


def test_controlled_rows_without_video_tokens_raises():
    input_ids = INPUT_IDS.clone()
    input_ids[1][input_ids[1] == VID] = 7
    with pytest.raises(
        ValueError, match=r"`controller_scope='video'` found no video tokens .* row\(s\) \[1\].*prompt"
    ):
        controlled_rows(VL_CONFIG, input_ids, ATTENTION_MASK, "video")


def test_controlled_rows_without_visual_tokens_raises():
    input_ids = torch.tensor([[1, 2, 3], [1, VID, 3]])
    with pytest.raises(
        ValueError, match=r"controller_scope='visual'.*row\(s\) \[0\].*controller_scope=\"prompt\""
    ):
        controlled_rows(VL_CONFIG, input_ids, None, "visual")


@pytest.mark.parametrize("scope", ["video", "visual"])
def test_controlled_rows_needs_a_video_token_id(scope):
    config = types.SimpleNamespace(vocab_size=10)
    with pytest.raises(
        ValueError, match=rf"`controller_scope='{scope}'` needs .*`video_token_id`.*\"prompt\""
    ):
        controlled_rows(config, INPUT_IDS, ATTENTION_MASK, scope)


def test_controlled_rows_prompt_scope_with_an_empty_row_raises():
    mask = ATTENTION_MASK.clone()
    mask[2] = 0
    with pytest.raises(ValueError, match=r"controller_scope='prompt'.*no prompt tokens.*\[2\]"):
        controlled_rows(VL_CONFIG, INPUT_IDS, mask, "prompt")


# ---------------------------------------------------------------------------------------------------------------
# prune_video_rows (V-Reason Lite)


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
    mask, new_rows, new_valid = prune_video_rows(layers, rows, valid, None, prune_ratio=ratio, scope=scope)

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
    prune_video_rows(layers, rows, valid, None, prune_ratio=0.5)
    assert torch.equal(layers[0].values, values[:, :, [0, 1, 2, 4, 5, 6, 7, 8, 9]])


def test_prune_shared_uses_the_target_layer_ranking():
    video = [2, 3, 4, 5, 6, 7]
    layers, originals, rows, valid = _build([video], num_layers=3, seed=3)
    per_layer_kept = [_expected_kept(v[0], video, 3) for _, v in originals]
    assert len({tuple(k) for k in per_layer_kept}) > 1  # the layers disagree, so the scope matters
    prune_video_rows(layers, rows, valid, None, prune_ratio=0.5, scope="shared", target_index=0)
    positions = sorted([0, 1, 8, 9] + per_layer_kept[0])
    for layer, (_, values) in zip(layers, originals, strict=True):
        assert torch.equal(layer.values, values[:, :, positions])


def test_prune_ratio_zero_changes_nothing():
    layers, originals, rows, valid = _build([[2, 3, 4, 5], [1, 2, 3, 4]])
    mask, new_rows, new_valid = prune_video_rows(layers, rows, valid, None, prune_ratio=0.0)
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
    mask, new_rows, new_valid = prune_video_rows(
        layers, rows, valid, attention_mask, prune_ratio=0.5, scope=scope
    )

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
    mask, _, _ = prune_video_rows(layers, rows, valid, None, prune_ratio=0.5)
    assert torch.equal(mask, torch.tensor([[1] * 9, [0, 0] + [1] * 7]))
    assert all(layer.values.shape[-2] == 9 for layer in layers)


def test_prune_with_equal_counts_keeps_the_given_mask():
    batch_video = [[4, 5, 6, 7], [2, 3, 4, 5]]
    layers, _, rows, valid = _build(batch_video, seed=8)
    attention_mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [1] * 10])
    mask, _, _ = prune_video_rows(layers, rows, valid, attention_mask, prune_ratio=0.5)
    # Both samples drop 2 rows, none of them padding: the padding of sample 0 survives, nothing new is masked.
    assert torch.equal(mask, torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8]))


def test_prune_rows_feed_a_controller_on_the_pruned_cache():
    batch_video = [[4, 5, 6, 7], [2, 3, 4, 5, 6, 7]]
    layers, _, rows, valid = _build(batch_video, seed=9)
    _, new_rows, new_valid = prune_video_rows(layers, rows, valid, None, prune_ratio=0.5)
    values = layers[-1].values
    controller = ValueController(new_rows, new_valid, values.shape[1], values.shape[-1], lr=0.5)
    controller.adam_step(torch.randn(controller.theta.shape, generator=_gen(10)), torch.tensor([True, True]))
    out = controller.apply(values)
    for b in range(2):
        changed = (out[b] != values[b]).any(-1).any(0)  # (seq,)
        assert changed.nonzero().flatten().tolist() == sorted(new_rows[b, new_valid[b]].tolist())
