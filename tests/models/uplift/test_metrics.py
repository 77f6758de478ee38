"""Qini curve, normalised Qini AUC and uplift@k against cases worked out by hand (scikit-uplift's definitions)."""

import numpy as np
import pytest

from features.exceptions import DataError
from models.uplift.metrics import perfect_qini_curve, qini_auc, qini_curve, uplift_at_k

Y = np.array([1, 0, 1, 0])
T = np.array([1, 1, 0, 0])


def test_qini_curve_by_hand():
    # Ranked as given: treated responder, treated non-responder, control responder, control non-responder.
    # Y_t - Y_c * N_t / N_c at each step: 1, 1, 1 - 1 * 2/1 = -1, 1 - 1 * 2/2 = 0.
    x, q = qini_curve(Y, [0.4, 0.3, 0.2, 0.1], T)
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, -1, 0]


def test_perfect_curve_puts_treated_responders_first_and_control_responders_last():
    # Perfect score y*t - y*(1-t) = [1, 0, -1, 0]: the two zeros are one tie step.
    x, q = perfect_qini_curve(Y, T)
    assert x.tolist() == [0, 1, 3, 4]
    assert q.tolist() == [0, 1, 1, 0]


def test_qini_auc_by_hand():
    # Model area 0.5 + 1 + 0 - 0.5 = 1; perfect area 0.5 + 2 + 0.5 = 3; the random line ends at 0 (area 0).
    assert qini_auc(Y, [0.4, 0.3, 0.2, 0.1], T) == pytest.approx(1 / 3)
    assert qini_auc(Y, [1, 0, -1, 0], T) == pytest.approx(1.0)


def test_qini_auc_with_a_non_zero_end_point():
    # Treated respond 2 of 3, control 0 of 2: every curve ends at 2, the random line's area is 5 * 2 / 2 = 5.
    y = np.array([1, 1, 0, 0, 0])
    t = np.array([1, 1, 1, 0, 0])
    # Ranked 2, 0, 1, 3, 4: curve 0, 0, 1, 2, 2, 2 -> area 0 + 0.5 + 1.5 + 2 + 2 = 6.
    # Perfect: the two treated responders tie (-> 2 at 2 customers), then the rest tie (-> 2 at 5): area 2 + 6 = 8.
    assert qini_auc(y, [0.5, 0.4, 0.9, 0.2, 0.1], t) == pytest.approx((6 - 5) / (8 - 5))
    assert qini_auc(y, np.zeros(5), t) == pytest.approx(0.0)  # all tied: one step along the random line


def test_reversed_ranking_is_below_random():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 2000)
    effect = rng.random(2000)
    y = (rng.random(2000) < 0.1 + 0.3 * effect * t).astype(float)
    assert qini_auc(y, effect, t) > 0.1
    assert qini_auc(y, -effect, t) < -0.1


def test_uplift_at_k_by_hand():
    y = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    t = np.array([1, 0, 1, 0, 0, 1, 1, 0, 1, 0])
    u = np.arange(10)[::-1]  # ranked as given
    # top int(10 * 0.4) = 4: treated 1, 1 (mean 1); control 0, 1 (mean 0.5)
    assert uplift_at_k(y, u, t, 0.4) == pytest.approx(0.5)
    assert np.isnan(uplift_at_k(y, u, np.ones(10).astype(int) * np.r_[1, 1, 1, 1, 0, 0, 0, 0, 0, 0], 0.4))


def test_needs_both_groups_and_an_outcome():
    with pytest.raises(DataError, match="treated and control"):
        qini_auc([1, 0], [0.1, 0.2], [1, 1])
    with pytest.raises(DataError, match="every outcome is zero"):
        qini_auc([0, 0, 0], [0.1, 0.2, 0.3], [1, 0, 1])
