"""The controller (SPEC section 2) and the rows it controls, without models; then how a generation reports
`controlled_rows`' errors."""

from __future__ import annotations

import types
from functools import partial

import pytest
import torch

from vreason_hf.generation.controller import ValueController, controlled_rows, norm_preserving_update
from vreason_hf.testing import greedy_vreason

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
# controlled_rows' errors as a generation reports them


_vreason = partial(greedy_vreason, max_new_tokens=8)


def test_video_scope_without_video_tokens_says_use_prompt(tiny_llama, qwen):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match='controller_scope="prompt"'):
        _vreason(model, tokenizer(["hi"], return_tensors="pt"))
    qmodel, processor, _ = qwen
    text_only = processor(text=["no video here"], return_tensors="pt")
    with pytest.raises(ValueError, match="found no video tokens"):
        _vreason(qmodel, text_only)


def test_an_empty_prompt_under_prompt_scope_does_not_suggest_prompt_scope(tiny_llama):
    model, tokenizer = tiny_llama
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        inputs = tokenizer(["", "hello there"], return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    assert not inputs["attention_mask"][0].any()
    with pytest.raises(
        ValueError, match=r"no prompt tokens in batch row\(s\) \[0\].*non-empty prompt"
    ) as error:
        _vreason(model, inputs, {"controller_scope": "prompt"})
    assert "use `controller_scope" not in str(error.value)
