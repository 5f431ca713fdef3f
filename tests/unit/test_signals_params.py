"""Strategy parameters from settings: the defaults untouched, each QC_SIGNALS_* override landing in its nested
field, contradictions and bad values refused naming the setting, the config's factor names in step with
the model's; and `qc signals stats --since` parsing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from qc.commands.signals import parse_since
from qc.core.clock import NEW_YORK
from qc.core.config import SIGNAL_FACTOR_NAMES, SIGNAL_STRATEGY_KEYS, Settings, resolve
from qc.core.errors import ConfigError
from qc.signals.gates import GateParams
from qc.signals.model import ALL_FACTORS, NEWS, STRATEGIES, StrategyParams
from qc.signals.params import DEFAULTS, MOC_MIN_IMBALANCE_RATIO, SignalSettings, from_settings


def settings(**env: str) -> Settings:
    return resolve({}, env, {}, {})


# --- defaults ------------------------------------------------------------------------------------

def test_default_settings_give_the_defaults() -> None:
    got = from_settings(Settings())
    assert got == SignalSettings(dict(DEFAULTS), GateParams(), MOC_MIN_IMBALANCE_RATIO, 100)
    for name in STRATEGIES:
        assert got.strategies[name] == DEFAULTS[name]
    assert got.moc_min_imbalance_ratio == 0.20


def test_resolved_empty_settings_give_the_defaults_too() -> None:
    got = from_settings(settings())
    assert dict(got.strategies) == dict(DEFAULTS)
    assert got.gates == GateParams()


def test_every_strategy_has_defaults_under_its_own_name() -> None:
    assert tuple(DEFAULTS) == STRATEGIES
    assert all(p.name == name for name, p in DEFAULTS.items())


def test_the_configs_factor_names_are_the_models() -> None:
    assert SIGNAL_FACTOR_NAMES == ALL_FACTORS  # the two lists never drift
    assert {f"w_{n}" for n in ALL_FACTORS} <= SIGNAL_STRATEGY_KEYS


def test_every_default_weight_names_a_known_factor() -> None:
    for p in DEFAULTS.values():
        assert set(p.weights) <= set(ALL_FACTORS)


# --- overrides ------------------------------------------------------------------------------------

def test_0dte_overrides_land_in_their_nested_fields() -> None:
    raw = "threshold=0.5,w_news=0,min_open_interest=1000,take_profit_pct=0.8,lead_min=0"
    got = from_settings(settings(QC_SIGNALS_0DTE=raw)).strategies["0dte"]
    base = DEFAULTS["0dte"]
    assert got.threshold == 0.5
    assert got.weights[NEWS] == 0.0
    assert {n: w for n, w in got.weights.items() if n != NEWS} == {n: w for n, w in base.weights.items() if n != NEWS}
    assert got.contract.min_open_interest == 1000 and isinstance(got.contract.min_open_interest, int)
    assert got.bracket.take_profit_pct == 0.8
    assert got.bracket.stop_pct == base.bracket.stop_pct  # the rest of the bracket untouched
    assert got.lead_min == 0.0 and got.lead == base.lead
    assert got.contract.delta_lo == base.contract.delta_lo and got.required == base.required
    assert DEFAULTS["0dte"] == base and DEFAULTS["0dte"].weights[NEWS] > 0  # the defaults are not mutated


def test_an_override_touches_only_its_strategy() -> None:
    got = from_settings(settings(QC_SIGNALS_0DTE="threshold=0.5"))
    assert got.strategies["0dte"].threshold == 0.5
    for name in ("1dte", "14dte", "moc"):
        assert got.strategies[name] == DEFAULTS[name]


@pytest.mark.parametrize(("raw", "check"), [
    ("min_volume=250", lambda p: p.contract.min_volume == 250 and isinstance(p.contract.min_volume, int)),
    ("delta_lo=0.2,delta_hi=0.3", lambda p: (p.contract.delta_lo, p.contract.delta_hi) == (0.2, 0.3)),
    ("max_spread_pct=0.07,max_spread_abs=0", lambda p: (p.contract.max_spread_pct, p.contract.max_spread_abs)
     == (0.07, 0.0)),
    ("max_quote_age_s=300", lambda p: p.contract.max_quote_age_s == 300.0),
    ("stop_pct=0.4,time_stop_min=30", lambda p: (p.bracket.stop_pct, p.bracket.time_stop_min) == (0.4, 30.0)),
    ("dwell_s=60,cooldown_s=30,max_age_s=10", lambda p: (p.dwell_s, p.cooldown_s, p.max_age_s) == (60, 30, 10)),
    ("min_factors=3", lambda p: p.min_factors == 3 and isinstance(p.min_factors, int)),
    ("min_factors=0", lambda p: p.min_factors == 1),  # at least one: zero factors is no consensus at all
    ("w_auction=2", lambda p: p.weights["auction"] == 2.0),
])
def test_1dte_overrides(raw: str, check: Callable[[StrategyParams], bool]) -> None:
    got = from_settings(settings(QC_SIGNALS_1DTE=raw)).strategies["1dte"]
    assert check(got), got


def test_moc_min_imbalance_ratio() -> None:
    got = from_settings(settings(QC_SIGNALS_MOC="min_imbalance_ratio=0.35,threshold=0.4"))
    assert got.moc_min_imbalance_ratio == 0.35
    assert got.strategies["moc"].threshold == 0.4
    assert got.strategies["moc"] == replace(DEFAULTS["moc"], threshold=0.4)


def test_min_imbalance_ratio_is_only_moc_s() -> None:
    with pytest.raises(ConfigError) as err:
        settings(QC_SIGNALS_0DTE="min_imbalance_ratio=0.3")
    assert err.value.field == "QC_SIGNALS_0DTE: min_imbalance_ratio"


def test_gate_overrides() -> None:
    got = from_settings(settings(QC_SIGNALS_GATES="zero_dte_cutoff_min=45,moc_buffer_min=3"))
    assert got.gates == GateParams(zero_dte_cutoff_min=45.0, moc_buffer_min=3.0)
    assert got.gates.late_entry_cutoff_min == GateParams().late_entry_cutoff_min


def test_pending_cap() -> None:
    assert from_settings(settings(QC_SIGNALS_PENDING_CAP="7")).pending_cap == 7


def test_delta_lo_above_delta_hi_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        from_settings(settings(QC_SIGNALS_0DTE="delta_lo=0.7"))  # above the default delta_hi
    assert err.value.field == "QC_SIGNALS_0DTE: delta_lo"
    assert "0.7" in err.value.problem and f"{DEFAULTS['0dte'].contract.delta_hi:g}" in err.value.problem
    with pytest.raises(ConfigError) as err:
        from_settings(settings(QC_SIGNALS_14DTE="delta_lo=0.5,delta_hi=0.4"))
    assert err.value.field.startswith("QC_SIGNALS_14DTE")


def test_delta_lo_equal_to_delta_hi_is_allowed() -> None:
    got = from_settings(settings(QC_SIGNALS_0DTE="delta_lo=0.5,delta_hi=0.5")).strategies["0dte"]
    assert (got.contract.delta_lo, got.contract.delta_hi) == (0.5, 0.5)


@pytest.mark.parametrize(("env", "raw", "field"), [
    ("QC_SIGNALS_0DTE", "thresold=0.5", "QC_SIGNALS_0DTE: thresold"),
    ("QC_SIGNALS_0DTE", "w_gamma=1", "QC_SIGNALS_0DTE: w_gamma"),
    ("QC_SIGNALS_1DTE", "threshold=-0.1", "QC_SIGNALS_1DTE: threshold"),
    ("QC_SIGNALS_14DTE", "w_news=nan", "QC_SIGNALS_14DTE: w_news"),
    ("QC_SIGNALS_MOC", "stop_pct=inf", "QC_SIGNALS_MOC: stop_pct"),
    ("QC_SIGNALS_MOC", "min_imbalance_ratio=abc", "QC_SIGNALS_MOC: min_imbalance_ratio"),
    ("QC_SIGNALS_GATES", "zero_dte_cutoff_min=-5", "QC_SIGNALS_GATES: zero_dte_cutoff_min"),
    ("QC_SIGNALS_GATES", "threshold=0.5", "QC_SIGNALS_GATES: threshold"),
    ("QC_SIGNALS_0DTE", "threshold", "QC_SIGNALS_0DTE"),
])
def test_bad_overrides_are_refused_at_resolve_naming_the_field(env: str, raw: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(**{env: raw})
    assert err.value.field == field
    assert err.value.exit_code == 2


def test_an_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError) as err:
        settings(QC_SIGNALS_0DTE="thresold=0.5")
    assert err.value.hint == "did you mean 'threshold'?"


def test_blank_items_are_ignored() -> None:
    got = from_settings(settings(QC_SIGNALS_0DTE=" threshold = 0.45 ,, "))
    assert got.strategies["0dte"].threshold == 0.45


# --- parse_since ------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 3, 20, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("raw", "ago"), [
    ("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    ("1.5h", timedelta(minutes=90)), (" 2d ", timedelta(days=2)), ("0m", timedelta(0)),
])
def test_since_a_duration_is_relative_to_now(raw: str, ago: timedelta) -> None:
    assert parse_since(raw, NOW) == NOW - ago


def test_since_a_date_is_new_york_midnight() -> None:
    got = parse_since("2026-12-01", NOW)
    assert got == datetime(2026, 12, 1, 0, 0, tzinfo=NEW_YORK)
    assert got == datetime(2026, 12, 1, 5, 0, tzinfo=timezone.utc)  # EST: UTC-5


def test_since_a_summer_date_is_new_york_midnight_in_daylight_time() -> None:
    assert parse_since("2026-07-01", NOW) == datetime(2026, 7, 1, 4, 0, tzinfo=timezone.utc)  # EDT: UTC-4


def test_since_a_naive_time_is_new_york_and_a_zoned_one_keeps_its_zone() -> None:
    assert parse_since("2026-12-01T09:30", NOW) == datetime(2026, 12, 1, 14, 30, tzinfo=timezone.utc)
    assert parse_since("2026-12-01T09:30+00:00", NOW) == datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("raw", ["yesterday", "7", "7w", "d7", "-7d", "", "2026-13-01", "7D"])
def test_since_garbage_is_a_config_error_naming_the_flag(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_since(raw, NOW)
    assert err.value.field == "--since"
    assert repr(raw) in err.value.problem


@pytest.mark.parametrize("raw", ["1000000d", "99999999999d"])
def test_since_an_absurd_duration_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_since(raw, NOW)
    assert err.value.field == "--since"
