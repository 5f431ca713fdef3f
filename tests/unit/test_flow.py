"""Flow clustering: hand-computed window features, labels on built-to-type windows, stable refits."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qc.analytics import flow
from qc.analytics.flow import LABELS, WINDOW_NS, FlowModel, fit_clusters, window_features

BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00Z, a whole minute
N_PER_WINDOW = 40


def _ar_returns(rng: np.random.Generator, n: int, phi: float, sigma: float, drift: float) -> np.ndarray:
    r = np.empty(n)
    prev = 0.0
    for i in range(n):
        prev = phi * prev + rng.normal(0.0, sigma)
        r[i] = prev + drift
    return r


def _window(kind: str, k: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One window of trades built to be momentum, hedging or mean-reversion flow."""
    n = N_PER_WINDOW
    ts = BASE_NS + k * WINDOW_NS + np.sort(rng.choice(WINDOW_NS, n, replace=False))
    if kind == "momentum":  # one-sided flow, trending persistent price in the flow's direction
        direction = 1 if k % 2 == 0 else -1
        side = np.full(n, direction)
        size = rng.integers(100, 600, n).astype(float)
        r = _ar_returns(rng, n, phi=0.6, sigma=1e-4, drift=direction * 1e-4)
    elif kind == "hedging":  # dealers long gamma selling blocks into a rally
        side = rng.permutation(np.r_[np.full(3 * n // 4, -1), np.full(n - 3 * n // 4, 1)])
        size = np.where(side < 0, rng.integers(10_000, 20_000, n), rng.integers(100, 600, n)).astype(float)
        r = _ar_returns(rng, n, phi=0.0, sigma=0.5e-4, drift=0.5e-4)
    else:  # balanced flow bouncing back and forth
        side = np.resize([1, -1], n)
        size = rng.integers(100, 600, n).astype(float)
        r = _ar_returns(rng, n, phi=-0.6, sigma=1e-4, drift=0.0)
    price = 500.0 * np.exp(np.cumsum(r))
    return ts, price, size, side, np.full(n, -1.0)


def _market(seed: int, per_kind: int = 8) -> tuple[tuple[np.ndarray, ...], dict[int, str]]:
    """Interleaved windows of the three kinds; returns trade arrays and the truth by window start."""
    rng = np.random.default_rng(seed)
    kinds = [kind for _ in range(per_kind) for kind in LABELS]
    parts = [_window(kind, k, rng) for k, kind in enumerate(kinds)]
    truth = {BASE_NS + k * WINDOW_NS: kind for k, kind in enumerate(kinds)}
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True)), truth


def _labels_by_start(result: flow.FlowClusters) -> dict[int, str]:
    return dict(zip(result.features.start_ns.tolist(), result.labels, strict=True))


# --- features ---------------------------------------------------------------------------------


def test_window_features_known_values() -> None:
    ts = BASE_NS + np.array([0, 1, 2, 3, 4]) * 10**9
    price = np.array([100.0, 101.0, 100.0, 101.0, 102.0])
    size = np.array([100.0, 200.0, 100.0, 20_000.0, 100.0])
    side = np.array([1, 1, -1, 1, 0])
    feats = window_features(ts, price, size, side, hedge_direction=1.0, block_size=10_000.0)

    assert len(feats) == 1
    assert feats.start_ns[0] == BASE_NS
    assert feats.imbalance[0] == pytest.approx((20_300 - 100) / 20_400)
    assert feats.log_volume[0] == pytest.approx(math.log1p(20_500))
    assert feats.block_share[0] == pytest.approx(20_000 / 20_500)
    r = np.diff(np.log(price))
    q = np.array([200.0, -100.0, 20_000.0, 0.0])
    assert feats.impact[0] == pytest.approx(r @ q / (q @ q) * 1e7)
    d = r - r.mean()
    assert feats.autocorr[0] == pytest.approx((d[:-1] @ d[1:]) / (d @ d))
    # buying while price rose and dealers chase (+1): aligned, by the imbalance
    assert feats.alignment[0] == pytest.approx(feats.imbalance[0])


def test_windows_align_to_whole_minutes_and_sort_input() -> None:
    one_s = 10**9
    ts = BASE_NS + np.array([61, 0, 59, 30, 60, 62, 63, 119]) * one_s + 5  # unsorted, a 5 ns offset
    price = np.full(ts.size, 10.0)
    feats = window_features(ts, price, np.ones(ts.size), np.zeros(ts.size), min_trades=1)
    assert feats.start_ns.tolist() == [BASE_NS, BASE_NS + WINDOW_NS]
    assert feats.n_trades.tolist() == [3, 5]


def test_sparse_windows_are_dropped() -> None:
    ts = BASE_NS + np.array([0, 1, 2, 60, 61, 62, 63]) * 10**9
    feats = window_features(ts, np.full(7, 10.0), np.ones(7), np.ones(7), min_trades=4)
    assert feats.start_ns.tolist() == [BASE_NS + WINDOW_NS]


def test_alignment_follows_move_and_dealer_side() -> None:
    ts = BASE_NS + np.arange(4) * 10**9
    rising, falling = np.array([10.0, 10.1, 10.2, 10.3]), np.array([10.3, 10.2, 10.1, 10.0])
    sells = -np.ones(4)
    # long-gamma dealers (-1) sell a rally: aligned; the same selling in a decline is not theirs
    assert window_features(ts, rising, np.ones(4), sells, -1.0).alignment[0] == pytest.approx(1.0)
    assert window_features(ts, falling, np.ones(4), sells, -1.0).alignment[0] == pytest.approx(-1.0)
    assert window_features(ts, rising, np.ones(4), sells, math.nan).alignment[0] == 0.0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("size", {"size": [1.0, -1.0]}),
        ("price", {"price": [1.0, 0.0]}),
        ("side", {"side": [1, 2]}),
        ("lengths differ", {"side": [1]}),
        ("hedge_direction", {"hedge_direction": [1.0, math.inf]}),
    ],
)
def test_bad_trades_name_the_field(field: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"ts_ns": [0, 1], "price": [1.0, 1.0], "size": [1.0, 1.0], "side": [1, -1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        window_features(**args)  # type: ignore[arg-type]


def test_hedge_direction_from_gex() -> None:
    assert flow.hedge_direction_from_gex(2.5e9) == -1.0  # dealers long gamma dampen
    assert flow.hedge_direction_from_gex(-1e8) == 1.0
    assert flow.hedge_direction_from_gex(math.nan) == 0.0


@given(
    st.integers(min_value=4, max_value=60).flatmap(
        lambda n: st.tuples(
            # returns of at least a tick's size (or none): sub-tick returns are rounding, not prices
            hnp.arrays(np.float64, n, elements=st.one_of(st.just(0.0), st.floats(1e-6, 0.01),
                                                         st.floats(-0.01, -1e-6))),
            # whole shares: with a fractional size of 1/128 a 1e-16 rounding of the log price
            # moves the impact feature (Σ r·q / Σ q²) by 1e-6, a float artefact, not a property
            hnp.arrays(np.float64, n, elements=st.integers(0, 50_000).map(float)),
            hnp.arrays(np.int64, n, elements=st.sampled_from([-1, 0, 1])),
        )
    ),
    st.floats(-1, 1),
    st.floats(0.01, 1e4),
)
def test_feature_ranges_and_price_scale_invariance(arrays, hedge: float, c: float) -> None:
    r, size, side = arrays
    ts = BASE_NS + np.arange(r.size) * 10**8
    price = 100.0 * np.exp(np.cumsum(r))
    feats = window_features(ts, price, size, side, hedge, min_trades=1)
    assert np.all(np.abs(feats.imbalance) <= 1.0)
    assert np.all((feats.block_share >= 0) & (feats.block_share <= 1))
    assert np.all(np.abs(feats.autocorr) <= 1.0 + 1e-12)
    assert np.all(np.abs(feats.alignment) <= abs(hedge) + 1e-12)
    scaled = window_features(ts, price * c, size, side, hedge, min_trades=1)
    np.testing.assert_allclose(scaled.matrix(), feats.matrix(), rtol=1e-6, atol=1e-6)


# --- clustering -------------------------------------------------------------------------------


def test_built_windows_get_their_labels() -> None:
    trades, truth = _market(seed=1)
    result = fit_clusters(window_features(*trades), seed=0)
    assert result.ok
    assert result.reason is None
    assert _labels_by_start(result) == truth
    assert result.model is not None
    assert result.model.labels == LABELS


def test_refit_shuffled_with_new_seed_keeps_labels() -> None:
    trades, truth = _market(seed=2)
    feats = window_features(*trades)
    first = fit_clusters(feats, seed=0)
    order = np.random.default_rng(7).permutation(len(feats))
    shuffled = flow.WindowFeatures(**{k: getattr(feats, k)[order] for k in feats.__dataclass_fields__})
    for previous in (None, first.model):
        again = fit_clusters(shuffled, previous, seed=123)
        assert _labels_by_start(again) == truth
        assert again.model is not None
        assert first.model is not None
        np.testing.assert_allclose(again.model.centroids, first.model.centroids, atol=1e-9)


def test_refit_on_new_data_inherits_previous_labels() -> None:
    trades, _ = _market(seed=3)
    first = fit_clusters(window_features(*trades), seed=0)
    assert first.model is not None
    # a deliberately "wrong" previous model: momentum and mean-reversion centroids swapped
    c = first.model.centroids
    swapped = FlowModel(first.model.mean, first.model.scale, c[[2, 1, 0]])
    trades2, truth2 = _market(seed=4)
    refit = fit_clusters(window_features(*trades2), swapped, seed=5)
    flip = {"momentum": "mean_reversion", "mean_reversion": "momentum", "hedging": "hedging"}
    assert _labels_by_start(refit) == {start: flip[kind] for start, kind in truth2.items()}
    honest = fit_clusters(window_features(*trades2), first.model, seed=5)
    assert _labels_by_start(honest) == truth2


def test_rule_assigns_each_label_once() -> None:
    # rows: strong trending flow, aligned flow, bouncing flow (standardised units)
    c = np.zeros((3, len(flow.FEATURE_NAMES)))
    c[0, [0, 3, 4]] = [1.5, 1.0, 1.2]
    c[1, 5] = 1.4
    c[2, 4] = -1.3
    order = [2, 0, 1]  # shuffle rows: the rule must follow the content, not the position
    perm = flow._best_permutation(flow.rule_scores(c[order]))
    assert [order[i] for i in perm] == [0, 1, 2]
    assert sorted(perm) == [0, 1, 2]


def test_rule_scores_follow_the_documented_rule() -> None:
    c = np.array([[0.5, 9.0, 9.0, 0.25, 2.0, -1.0]])  # log_volume and block_share never count
    # momentum = |imbalance| + impact + autocorr; hedging = alignment; mean_reversion = -autocorr
    np.testing.assert_allclose(flow.rule_scores(c), [[2.75, -1.0, -2.0]])


def test_match_centroids_follows_distance_not_row_order() -> None:
    old = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    new = old[[2, 0, 1]] + 0.1  # the same clusters, rows rotated, slightly moved
    perm = flow.match_centroids(new, old)
    assert perm == (1, 2, 0)
    np.testing.assert_allclose(new[list(perm)], old + 0.1)


@pytest.mark.parametrize("n_windows", [0, 1, 2])
def test_too_few_windows_is_insufficient_data(n_windows: int) -> None:
    trades, _ = _market(seed=5, per_kind=1)
    keep = trades[0] < BASE_NS + n_windows * WINDOW_NS
    result = fit_clusters(window_features(*(a[keep] for a in trades)))
    assert not result.ok
    assert result.model is None
    assert result.reason is not None
    assert result.reason.startswith("insufficient data")
    assert result.labels == ("unassigned",) * n_windows


def test_identical_windows_are_insufficient_data() -> None:
    ts = BASE_NS + (np.arange(5)[:, None] * WINDOW_NS + np.arange(4)[None, :] * 10**9).ravel()
    price = np.tile([10.0, 10.1, 10.0, 10.1], 5)
    result = fit_clusters(window_features(ts, price, np.full(20, 100.0), np.tile([1, -1, 1, -1], 5)))
    assert not result.ok
    assert result.reason is not None
    assert "distinct" in result.reason


def test_constant_features_standardise_safely() -> None:
    trades, truth = _market(seed=6)
    ts, price, size, side, _ = trades
    small = np.minimum(size, 500.0)  # no blocks: block_share constant 0; hedge 0: alignment constant 0
    result = fit_clusters(window_features(ts, price, small, side, 0.0))
    assert result.model is not None
    assert np.all(np.isfinite(result.model.centroids))
    col = [flow.FEATURE_NAMES.index("block_share"), flow.FEATURE_NAMES.index("alignment")]
    assert result.model.scale[col].tolist() == [1.0, 1.0]
    momentum = [s for s, kind in truth.items() if kind == "momentum"]
    assert {_labels_by_start(result)[s] for s in momentum} == {"momentum"}


def test_column_constant_up_to_rounding_is_not_amplified() -> None:
    trades, truth = _market(seed=9)
    feats = window_features(*trades)
    noisy = np.where(np.arange(len(feats)) % 2 == 0, 0.1 + 0.2, 0.3)  # 0.30000000000000004 vs 0.3
    assert np.std(noisy) > 0
    result = fit_clusters(dataclasses.replace(feats, block_share=noisy))
    assert result.model is not None
    assert result.model.scale[flow.FEATURE_NAMES.index("block_share")] == 1.0
    assert _labels_by_start(result) == truth


def test_model_round_trips_through_json() -> None:
    trades, _ = _market(seed=8)
    feats = window_features(*trades)
    model = fit_clusters(feats).model
    assert model is not None
    back = FlowModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(back.centroids, model.centroids)
    np.testing.assert_array_equal(back.predict(feats), model.predict(feats))
    stale = {**model.to_dict(), "feature_names": ["abs_imbalance"]}
    with pytest.raises(ValueError, match="feature_names"):
        FlowModel.from_dict(stale)
