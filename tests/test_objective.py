"""The entropy switching objective (SPEC section 3) against hand-computed references on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from vreason_hf.generation.objective import (
    entropy,
    kl_to_uniform,
    next_alpha,
    next_ema,
    schedule_step,
    schedule_traces,
    switch_loss,
)

INF = float("inf")


def _run_schedule(entropies: list[float], beta: float, schedule: str = "switch", ema_init: str = "zero"):
    """`schedule_traces` on one sequence, as lists."""
    emas, peaks, alphas = schedule_traces(
        torch.tensor(entropies), beta=beta, ema_init=ema_init, schedule=schedule
    )
    return emas.tolist(), peaks.tolist(), alphas.tolist()


# ---------------------------------------------------------------------------------------------------------------
# entropy


@pytest.mark.parametrize("vocab", [2, 7, 1000])
def test_entropy_of_uniform_is_log_vocab(vocab):
    logits = torch.zeros(3, vocab)
    logits[1] += 5.0  # softmax is shift invariant
    logits[2] -= 123.0
    torch.testing.assert_close(entropy(logits), torch.full((3,), math.log(vocab)), atol=1e-5, rtol=0)


def test_entropy_of_one_hot_is_zero_without_nan():
    logits = torch.tensor(
        [
            [-INF, 0.0, -INF, -INF],  # masked entries
            [0.0, -1e4, -1e4, -1e4],  # p underflows to exactly 0
            [3.0, -INF, -INF, -INF],
        ]
    )
    h = entropy(logits)
    assert not h.isnan().any()
    torch.testing.assert_close(h, torch.zeros(3), atol=1e-7, rtol=0)


def test_entropy_with_some_masked_entries_equals_entropy_over_the_rest():
    logits = torch.tensor([[0.0, -INF, 0.0, -INF, 0.0]])
    torch.testing.assert_close(entropy(logits), torch.tensor([math.log(3)]))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.99])
def test_entropy_of_two_way_distribution(p):
    # p = 0.2: -0.2 ln 0.2 - 0.8 ln 0.8 = 0.3218876 + 0.1785148 = 0.5004024
    logits = torch.tensor([[math.log(p), math.log(1 - p)]])
    expected = -p * math.log(p) - (1 - p) * math.log(1 - p)
    torch.testing.assert_close(entropy(logits), torch.tensor([expected]), atol=1e-6, rtol=0)


def test_entropy_hand_value():
    assert entropy(torch.tensor([math.log(0.2), math.log(0.8)])).item() == pytest.approx(
        0.5004024235, abs=1e-6
    )


def test_entropy_matches_direct_formula_on_random_logits():
    logits = torch.randn(4, 3, 50, generator=torch.Generator().manual_seed(0)) * 3
    p = torch.softmax(logits.double(), -1)
    expected = -(p * p.log()).sum(-1)
    h = entropy(logits)
    assert h.shape == (4, 3)
    torch.testing.assert_close(h.double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_entropy_is_float32(dtype):
    logits = torch.zeros(2, 8, dtype=dtype)
    h = entropy(logits)
    assert h.dtype == torch.float32
    torch.testing.assert_close(h, torch.full((2,), math.log(8)))


def test_entropy_is_bounded():
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(1)) * 10
    h = entropy(logits)
    assert (h >= -1e-6).all() and (h <= math.log(30) + 1e-5).all()


def test_entropy_gradient_is_finite_with_masked_logits():
    logits = torch.tensor([[0.0, -INF, 1.0, 2.0]], requires_grad=True)
    switch_loss(logits, torch.tensor([1.0])).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_entropy_gradient_is_finite_when_p_underflows():
    logits = torch.tensor([[0.0, -200.0, 1.0, 2.0]], requires_grad=True)
    entropy(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------------------------------------------------------
# kl_to_uniform


def test_kl_p_u_is_log_vocab_minus_entropy():
    logits = torch.randn(5, 40, generator=torch.Generator().manual_seed(2)) * 2
    torch.testing.assert_close(kl_to_uniform(logits, "p_u"), math.log(40) - entropy(logits))


def test_kl_p_u_matches_direct_computation():
    logits = torch.randn(5, 40, generator=torch.Generator().manual_seed(3)) * 2
    p = torch.softmax(logits.double(), -1)
    direct = (p * (p.log() - math.log(1 / 40))).sum(-1)  # KL(p || U) = Σ p log(p / (1/V))
    torch.testing.assert_close(kl_to_uniform(logits, "p_u").double(), direct, atol=1e-5, rtol=0)


def test_kl_u_p_matches_direct_computation():
    logits = torch.randn(5, 40, generator=torch.Generator().manual_seed(4)) * 2
    p = torch.softmax(logits.double(), -1)
    u = 1 / 40
    direct = (u * (math.log(u) - p.log())).sum(-1)  # KL(U || p) = Σ (1/V) log((1/V) / p)
    torch.testing.assert_close(kl_to_uniform(logits, "u_p").double(), direct, atol=1e-5, rtol=0)


def test_kl_u_p_hand_value():
    # p = [0.2, 0.8]: KL(U||p) = 0.5 ln(0.5/0.2) + 0.5 ln(0.5/0.8) = 0.5 (0.9162907 - 0.4700036) = 0.2231436
    logits = torch.tensor([math.log(0.2), math.log(0.8)])
    assert kl_to_uniform(logits, "u_p").item() == pytest.approx(0.2231436, abs=1e-6)


@pytest.mark.parametrize("direction", ["p_u", "u_p"])
def test_kl_is_zero_at_uniform_and_positive_elsewhere(direction):
    assert kl_to_uniform(torch.zeros(3, 11), direction).abs().max() < 1e-5
    logits = torch.randn(16, 11, generator=torch.Generator().manual_seed(5))
    assert (kl_to_uniform(logits, direction) > 0).all()


def test_kl_default_direction_is_p_u():
    logits = torch.randn(2, 9, generator=torch.Generator().manual_seed(6))
    assert torch.equal(kl_to_uniform(logits), kl_to_uniform(logits, "p_u"))


@pytest.mark.parametrize("direction", ["pu", "U_P", "", "q_u"])
def test_kl_invalid_direction_raises(direction):
    with pytest.raises(ValueError, match="`direction` must be 'p_u' or 'u_p'"):
        kl_to_uniform(torch.zeros(1, 3), direction)


# ---------------------------------------------------------------------------------------------------------------
# next_ema / next_alpha


def test_next_ema_arithmetic():
    # 0.75 * 2 + 0.25 * 4 = 2.5
    assert next_ema(torch.tensor(2.0), torch.tensor(4.0), 0.75).item() == 2.5
    # β = 0: no memory
    assert next_ema(torch.tensor(2.0), torch.tensor(4.0), 0.0).item() == 4.0
    # per element, batched
    out = next_ema(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0]), 0.5)
    assert torch.equal(out, torch.tensor([0.5, 2.0]))


def test_next_ema_is_float32():
    out = next_ema(torch.tensor([1.0], dtype=torch.bfloat16), torch.tensor([2], dtype=torch.int64), 0.5)
    assert out.dtype == torch.float32
    assert out.item() == 1.5


ENTROPIES = [1.0, 2.0, 3.0, 2.5, 2.6, 0.5, 4.0]


def test_switch_schedule_with_smoothing():
    emas, peaks, alphas = _run_schedule(ENTROPIES, beta=0.5)
    # H_ema_k = 0.5 H_ema_{k-1} + 0.5 H_k, H_ema_0 = 0:
    #   0.5·0      + 0.5·1   = 0.5
    #   0.5·0.5    + 0.5·2   = 1.25
    #   0.5·1.25   + 0.5·3   = 2.125
    #   0.5·2.125  + 0.5·2.5 = 2.3125      (H fell, but the EMA still rises: α stays +1)
    #   0.5·2.3125 + 0.5·2.6 = 2.45625     (new peak)
    #   0.5·2.45625+ 0.5·0.5 = 1.478125    (below the peak 2.45625: α = -1)
    #   0.5·1.478125+0.5·4   = 2.7390625   (new peak: α = +1 again)
    assert emas == pytest.approx([0.5, 1.25, 2.125, 2.3125, 2.45625, 1.478125, 2.7390625], abs=1e-6)
    assert peaks == pytest.approx([0.5, 1.25, 2.125, 2.3125, 2.45625, 2.45625, 2.7390625], abs=1e-6)
    assert alphas == [1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0]


def test_switch_schedule_without_smoothing():
    emas, peaks, alphas = _run_schedule(ENTROPIES, beta=0.0)
    assert emas == pytest.approx(ENTROPIES)
    assert peaks == pytest.approx([1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0])
    # 2.5 and 2.6 are below the peak 3 (2.6 > 2.5 is a micro-rise, still exploit); 4 is a new peak.
    assert alphas == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0]


@pytest.mark.parametrize(("schedule", "value"), [("minimize", -1.0), ("maximize", 1.0)])
def test_fixed_schedules_are_constant(schedule, value):
    for beta in (0.0, 0.5):
        _, _, alphas = _run_schedule(ENTROPIES, beta=beta, schedule=schedule)
        assert alphas == [value] * len(ENTROPIES)


def test_next_alpha_batched_and_ties():
    ema = torch.tensor([1.0, 2.0, 3.0, 0.0])
    peak = torch.tensor([1.0, 2.5, 3.0, 0.0])
    alpha = next_alpha(ema, peak)
    # ema == peak (at the running peak, ties included) explores; strictly below exploits.
    assert torch.equal(alpha, torch.tensor([1.0, -1.0, 1.0, 1.0]))
    assert alpha.dtype == torch.float32
    for schedule in ("switch", "minimize", "maximize"):
        out = next_alpha(ema.half(), peak.half(), schedule)
        assert out.dtype == torch.float32 and out.shape == ema.shape


def test_switch_schedule_with_first_init():
    emas, peaks, alphas = _run_schedule(ENTROPIES, beta=0.5, ema_init="first")
    # H_ema_0 = H_0 = 1, then H_ema_k = 0.5 H_ema_{k-1} + 0.5 H_k:
    #   1
    #   0.5·1       + 0.5·2   = 1.5
    #   0.5·1.5     + 0.5·3   = 2.25
    #   0.5·2.25    + 0.5·2.5 = 2.375
    #   0.5·2.375   + 0.5·2.6 = 2.4875
    #   0.5·2.4875  + 0.5·0.5 = 1.49375   (below the peak 2.4875: α = -1)
    #   0.5·1.49375 + 0.5·4   = 2.746875  (new peak)
    assert emas == pytest.approx([1.0, 1.5, 2.25, 2.375, 2.4875, 1.49375, 2.746875], abs=1e-6)
    assert peaks == pytest.approx([1.0, 1.5, 2.25, 2.375, 2.4875, 2.4875, 2.746875], abs=1e-6)
    assert alphas == [1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0]


def test_ema_init_decides_where_the_peak_is():
    # Entropy 4, 2, 2 with β = 0.5. From zero: 0.5·0 + 0.5·4 = 2, then 0.5·2 + 0.5·2 = 2 twice: flat at the peak
    # (ties explore). From the first entropy: 4, 0.5·4 + 0.5·2 = 3, 0.5·3 + 0.5·2 = 2.5: the peak is token 0.
    zero = _run_schedule([4.0, 2.0, 2.0], beta=0.5)
    first = _run_schedule([4.0, 2.0, 2.0], beta=0.5, ema_init="first")
    assert zero == ([2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert first == ([4.0, 3.0, 2.5], [4.0, 4.0, 4.0], [1.0, -1.0, -1.0])


def test_schedule_ties_at_the_peak_explore():
    # β = 0: the EMA is the entropy. Returning exactly to the peak (3 after 1) is a tie: α = +1 again.
    assert _run_schedule([1.0, 3.0, 1.0, 3.0], beta=0.0) == (
        [1.0, 3.0, 1.0, 3.0],
        [1.0, 3.0, 3.0, 3.0],
        [1.0, 1.0, -1.0, 1.0],
    )
    # Constant entropy from "first": the EMA sits on its peak for ever.
    assert _run_schedule([2.0] * 4, beta=0.9, ema_init="first")[2] == [1.0] * 4


def test_zero_init_warm_up_closed_form():
    # Constant entropy 1 from H_ema = 0: H_ema_k = 1 - β^(k+1) (k counts from 0), always a new peak.
    emas, peaks, alphas = _run_schedule([1.0] * 6, beta=0.97)
    assert emas == pytest.approx([1 - 0.97 ** (k + 1) for k in range(6)], abs=1e-6)
    assert peaks == emas and alphas == [1.0] * 6


def test_finished_rows_keep_their_ema_and_peak():
    # Row 0 is still generating, row 1 has finished: its EMA and peak stay, whatever its (NaN) entropy.
    ema, peak = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.5])
    h = torch.tensor([5.0, float("nan")])
    new_ema, new_peak, alpha = schedule_step(
        ema, peak, h, first=False, beta=0.5, active=torch.tensor([True, False])
    )
    # Row 0: 0.5·1 + 0.5·5 = 3, a tie with the peak 3 (α = +1). Row 1: 2 < 2.5 as before (α = -1).
    assert new_ema.tolist() == [3.0, 2.0]
    assert new_peak.tolist() == [3.0, 2.5]
    assert alpha.tolist() == [1.0, -1.0]
    # `first` only matters with ema_init="first", and only for active rows.
    first_ema, _, _ = schedule_step(
        ema, peak, h, first=True, beta=0.5, ema_init="first", active=torch.tensor([True, False])
    )
    assert first_ema.tolist() == [5.0, 2.0]


def test_batched_schedule_rows_are_independent():
    rows = torch.tensor([ENTROPIES, [float(i) for i in range(len(ENTROPIES))]])
    emas, peaks, alphas = schedule_traces(rows, beta=0.0)
    assert alphas[0].tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0]
    assert alphas[1].tolist() == [1.0] * len(ENTROPIES)  # monotone entropy: always exploring
    for row in range(2):
        alone = schedule_traces(rows[row], beta=0.0)
        for batched, single in zip((emas, peaks, alphas), alone, strict=True):
            assert torch.equal(batched[row], single)


def test_schedule_traces_shapes():
    emas, peaks, alphas = schedule_traces(torch.rand(2, 3, 5).half(), beta=0.9)
    assert emas.shape == peaks.shape == alphas.shape == (2, 3, 5)
    assert emas.dtype == peaks.dtype == alphas.dtype == torch.float32
    empty = schedule_traces(torch.zeros(0), beta=0.9)
    assert all(t.shape == (0,) for t in empty)


@pytest.mark.parametrize("ema_init", ["Zero", "last", ""])
def test_schedule_invalid_ema_init_raises(ema_init):
    with pytest.raises(ValueError, match="`ema_init` must be 'zero' or 'first'"):
        schedule_traces(torch.ones(2), beta=0.5, ema_init=ema_init)


@pytest.mark.parametrize("schedule", ["Switch", "min", "", "maximise"])
def test_next_alpha_invalid_schedule_raises(schedule):
    with pytest.raises(ValueError, match="`schedule` must be 'switch', 'minimize' or 'maximize'"):
        next_alpha(torch.zeros(1), torch.zeros(1), schedule)


# ---------------------------------------------------------------------------------------------------------------
# switch_loss


@pytest.mark.parametrize("direction", ["p_u", "u_p"])
def test_switch_loss_is_alpha_times_kl(direction):
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(7))
    alpha = torch.tensor([1.0, -1.0, 0.0])
    loss = switch_loss(logits, alpha, direction)
    assert loss.shape == (3,)
    torch.testing.assert_close(loss, alpha * kl_to_uniform(logits, direction))


@pytest.mark.parametrize("direction", ["p_u", "u_p"])
@pytest.mark.parametrize(("alpha", "sign"), [(1.0, 1), (-1.0, -1)])
def test_switch_loss_gradient_step_moves_entropy(direction, alpha, sign):
    """Minimising L with α = +1 raises the entropy (explore), with α = −1 lowers it (exploit)."""
    logits = (torch.randn(8, 30, generator=torch.Generator().manual_seed(8)) * 2).requires_grad_(True)
    before = entropy(logits.detach())
    switch_loss(logits, torch.full((8,), alpha), direction).sum().backward()
    after = entropy(logits.detach() - 0.05 * logits.grad)
    assert (torch.sign(after - before) == sign).all()


def test_switch_loss_alpha_zero_row_gets_no_gradient():
    logits = torch.randn(2, 10, generator=torch.Generator().manual_seed(9), requires_grad=True)
    switch_loss(logits, torch.tensor([1.0, 0.0])).sum().backward()
    assert logits.grad[0].abs().sum() > 0
    assert torch.equal(logits.grad[1], torch.zeros(10))


def test_switch_loss_row_gradient_does_not_depend_on_batch():
    logits = torch.randn(3, 10, generator=torch.Generator().manual_seed(10))
    alpha = torch.tensor([-1.0, 1.0, -1.0])
    batched = logits.clone().requires_grad_(True)
    switch_loss(batched, alpha).sum().backward()
    single = logits[:1].clone().requires_grad_(True)
    switch_loss(single, alpha[:1]).sum().backward()
    torch.testing.assert_close(batched.grad[:1], single.grad)


# ---------------------------------------------------------------------------------------------------------------
# purity


def test_functions_do_not_mutate_inputs():
    logits = torch.randn(3, 12, generator=torch.Generator().manual_seed(11))
    logits[0, 0] = -INF
    alpha = torch.tensor([1.0, -1.0, 1.0])
    ema, peak, value = (
        torch.tensor([0.5, 1.0, 2.0]),
        torch.tensor([0.5, 1.5, 2.0]),
        torch.tensor([3.0, 0.0, 1.0]),
    )
    saved = [t.clone() for t in (logits, alpha, ema, peak, value)]

    entropy(logits)
    for direction in ("p_u", "u_p"):
        kl_to_uniform(logits, direction)
        switch_loss(logits, alpha, direction)
    out = next_ema(ema, value, 0.5)
    for schedule in ("switch", "minimize", "maximize"):
        next_alpha(ema, peak, schedule)
        schedule_step(ema, peak, value, first=False, beta=0.5, schedule=schedule)
        schedule_step(ema, peak, value, first=True, beta=0.5, ema_init="first", active=alpha > 0)
    schedule_traces(value, beta=0.5)

    for original, now in zip(saved, (logits, alpha, ema, peak, value), strict=True):
        assert torch.equal(original, now)
    assert out.data_ptr() not in (ema.data_ptr(), value.data_ptr())
    started, _, _ = schedule_step(ema, peak, value, first=True, beta=0.5, ema_init="first")
    assert started.data_ptr() != value.data_ptr()


def test_next_ema_returns_a_new_float32_tensor_for_float32_inputs():
    ema = torch.tensor([1.0])
    out = next_ema(ema, torch.tensor([3.0]), 0.5)
    out += 100
    assert ema.item() == 1.0
