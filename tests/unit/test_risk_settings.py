"""Risk settings: the override names track the dataclasses, overrides apply, bad values are one-line errors."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import pytest

from qc.core import config
from qc.core.errors import ConfigError
from qc.risk.breakers import BreakerLimits
from qc.risk.model import BUCKETS, Limits
from qc.risk.settings import breakers_from, describe, limits_from


def resolve(**env: str) -> config.Settings:
    return config.resolve({}, env, {}, {})


def test_the_override_names_are_exactly_the_dataclass_fields() -> None:
    """config.py keeps literal tuples (core may not import qc.risk): these keep them equal to the fields."""
    defaults = Limits()
    fields = dataclasses.fields(Limits)
    bucketed = tuple(f.name for f in fields if isinstance(getattr(defaults, f.name), Mapping))
    assert bucketed == config.RISK_BUCKET_LIMIT_NAMES
    assert tuple(f.name for f in fields if f.name not in bucketed) == config.RISK_LIMIT_NAMES
    assert config.RISK_BUCKETS == BUCKETS
    assert all(tuple(getattr(defaults, name)) == BUCKETS for name in bucketed)
    shared = ("daily_loss_usd", "drawdown_usd")  # the limits' own, not overridable here
    breakers = tuple(f.name for f in dataclasses.fields(BreakerLimits) if f.name not in shared)
    assert breakers == config.RISK_BREAKER_NAMES
    whole = {f.name for f in (*fields, *dataclasses.fields(BreakerLimits)) if f.type == "int"}
    assert set(config.RISK_WHOLE_NAMES) == whole


def test_defaults_are_the_dataclasses_defaults() -> None:
    s = resolve()
    assert limits_from(s) == Limits()
    assert breakers_from(s) == BreakerLimits()
    assert (s.execute_client_id, s.risk_halt_ack_s, s.risk_interval_s) == (7, 3.0, 1.0)
    assert (s.risk_limits, s.risk_breakers) == ({}, {})


def test_overrides_apply_one_bucket_at_a_time_and_off_disables() -> None:
    s = resolve(QC_RISK_LIMITS="max_qty_per_order=5, delta_usd_per_pct_per_bucket.0dte=40000,"
                               "vega_usd_per_vol_pt_per_underlying=off,max_open_orders_per_side=3,"
                               "gamma_usd_per_pct_per_pct_per_bucket.14dte=INF",
                QC_RISK_BREAKERS="rejects_n=2,vpin_trip=0.7,vpin_clear=0.55")
    limits = limits_from(s)
    assert limits.max_qty_per_order == 5
    assert limits.max_open_orders_per_side == 3 and isinstance(limits.max_open_orders_per_side, int)
    default_delta = Limits().delta_usd_per_pct_per_bucket
    assert dict(limits.delta_usd_per_pct_per_bucket) == {**default_delta, "0dte": 40_000}
    assert math.isinf(limits.gamma_usd_per_pct_per_pct_per_bucket["14dte"])
    assert limits.gamma_usd_per_pct_per_pct_per_bucket["0dte"] == Limits().gamma_usd_per_pct_per_pct_per_bucket["0dte"]
    assert math.isinf(limits.vega_usd_per_vol_pt_per_underlying)
    assert limits.max_premium_per_order_usd == Limits().max_premium_per_order_usd
    assert breakers_from(s) == BreakerLimits(rejects_n=2, vpin_trip=0.7, vpin_clear=0.55)
    assert isinstance(breakers_from(s).rejects_n, int)
    loss = resolve(QC_RISK_LIMITS="daily_loss_limit_usd=1500,drawdown_limit_usd=off")
    assert breakers_from(loss).daily_loss_usd == 1500  # one number: the check and the breaker agree
    assert math.isinf(breakers_from(loss).drawdown_usd)


def test_public_prints_the_overrides_readably() -> None:
    s = resolve(QC_RISK_LIMITS="max_qty_per_order=off,delta_usd_per_pct_per_bucket.0dte=1234567,price_band_pct=2.5",
                QC_RISK_BREAKERS="vpin_trip=0.7")
    public = s.public()
    assert public["risk_limits"] == {"value": "max_qty_per_order=inf,delta_usd_per_pct_per_bucket.0dte=1234567,"
                                              "price_band_pct=2.5", "source": "env", "env": "QC_RISK_LIMITS"}
    assert public["risk_breakers"]["value"] == "vpin_trip=0.7"
    assert public["execute_client_id"] == {"value": 7, "source": "default", "env": "QC_EXECUTE_CLIENT_ID"}


@pytest.mark.parametrize(("env", "value", "words"), [
    ("QC_RISK_LIMITS", "max_qty_per_ordr=5", "QC_RISK_LIMITS: max_qty_per_ordr: unknown name (did you mean "
                                             "'max_qty_per_order'?)"),
    ("QC_RISK_LIMITS", "delta_usd_per_pct_per_bucket.odte=1", "QC_RISK_LIMITS: delta_usd_per_pct_per_bucket.odte: "
                                                              "unknown bucket 'odte' (known buckets: 0dte, 1dte, "
                                                              "14dte, other)"),
    ("QC_RISK_LIMITS", "delta_usd_per_pct_per_bucket=1", "delta_usd_per_pct_per_bucket: a per-bucket limit needs"),
    ("QC_RISK_LIMITS", "max_qty_per_order.0dte=1", "max_qty_per_order.0dte: unknown name"),
    ("QC_RISK_LIMITS", "max_qty_per_order=-1", "max_qty_per_order: must be a finite number ≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order=nan", "max_qty_per_order: must be a finite number ≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order=1e400", "max_qty_per_order: must be a finite number ≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order=ten", "max_qty_per_order: expected a number or off"),
    ("QC_RISK_LIMITS", "max_qty_per_order=1,max_qty_per_order=2", "max_qty_per_order: given twice"),
    ("QC_RISK_LIMITS", "max_msgs_per_s=2.5", "max_msgs_per_s: must be a whole number ≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order", "name=value"),
    ("QC_RISK_LIMITS", "=5", "a value without a name"),
    ("QC_RISK_BREAKERS", "rejects_n=off", "rejects_n: expected a number"),
    ("QC_RISK_BREAKERS", "rejects_n=2.5", "rejects_n: must be a whole number ≥ 1"),
    ("QC_RISK_BREAKERS", "rejects_n=0", "rejects_n: must be a whole number ≥ 1"),
    ("QC_RISK_BREAKERS", "daily_loss_usd=100", "daily_loss_usd: unknown name"),
    ("QC_RISK_BREAKERS", "vpin_trip=-0.5", "vpin_trip: must be a finite number ≥ 0"),
    ("QC_EXECUTE_CLIENT_ID", "1", "QC_EXECUTE_CLIENT_ID: must differ from QC_IB_CLIENT_ID"),
    ("QC_EXECUTE_CLIENT_ID", "1000000", "between 0 and 999999"),
    ("QC_RISK_HALT_ACK_S", "0.05", "between 0.1 and 60"),
    ("QC_RISK_INTERVAL_S", "61", "between 0.1 and 60"),
])
def test_bad_values_are_one_line_errors_naming_the_field(env: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve(**{env: value})
    message = str(err.value)
    assert err.value.field == env  # the variable; the override's name leads the problem
    assert message.startswith(f"{env}: ") and words in message and "\n" not in message


def test_execute_client_id_must_differ_from_ib_client_id_whichever_moved() -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve({}, {"QC_IB_CLIENT_ID": "7"}, {}, {})
    assert err.value.field == "QC_EXECUTE_CLIENT_ID" and "the ingestion connection" in str(err.value)
    s = config.resolve({}, {"QC_IB_CLIENT_ID": "7"}, {}, {"execute_client_id": "8"})
    assert (s.ib_client_id, s.execute_client_id, s.sources["execute_client_id"]) == (7, 8, "qc.toml")


@pytest.mark.parametrize(("env", "value", "words"), [
    ("QC_RISK_BREAKERS", "vpin_clear=0.7", "QC_RISK_BREAKERS: vpin_clear/vpin_trip: need 0 < clear < trip ≤ 1"),
    ("QC_RISK_BREAKERS", "vpin_trip=1.5", "QC_RISK_BREAKERS: vpin_clear/vpin_trip"),
    ("QC_RISK_BREAKERS", "rejects_window_min=0", "QC_RISK_BREAKERS: rejects_window_min: must be > 0"),
    ("QC_RISK_BREAKERS", "flip_clear_pct=0", "QC_RISK_BREAKERS: flip_clear_pct: must be > 0"),
    ("QC_RISK_LIMITS", "daily_loss_limit_usd=0", "QC_RISK_LIMITS: daily_loss_limit_usd: must be > 0"),
    ("QC_RISK_LIMITS", "drawdown_limit_usd=0", "QC_RISK_LIMITS: drawdown_limit_usd: must be > 0"),
])
def test_values_the_dataclasses_refuse_are_config_errors_at_start(env: str, value: str, words: str) -> None:
    s = resolve(**{env: value})
    with pytest.raises(ConfigError) as err:
        breakers_from(s)
    assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        describe(s)


def test_limits_refused_by_the_dataclass_name_the_variable_and_field() -> None:
    by_hand = config.Settings(risk_limits={"max_spread_pct": -1.0})  # resolve() would refuse it earlier
    with pytest.raises(ConfigError) as err:
        limits_from(by_hand)
    assert str(err.value).startswith("QC_RISK_LIMITS: max_spread_pct: must be") and "\n" not in str(err.value)
    fractional = config.Settings(risk_limits={"max_open_orders_per_side": 1.5})
    with pytest.raises(ConfigError, match="QC_RISK_LIMITS: max_open_orders_per_side: must be a whole number"):
        limits_from(fractional)


def test_describe_names_every_limit_with_its_source() -> None:
    s = config.resolve({}, {"QC_RISK_LIMITS": "max_qty_per_order=5,delta_usd_per_pct_per_bucket.0dte=off"},
                       {"QC_RISK_BREAKERS": "vpin_trip=0.8"}, {})
    rows = {name: (value, source) for name, value, source in describe(s)}
    assert rows["max_qty_per_order"] == ("5", "env")
    assert rows["max_premium_per_order_usd"] == ("10000", "default")
    assert rows["delta_usd_per_pct_per_bucket.0dte"] == ("off", "env")
    assert rows["delta_usd_per_pct_per_bucket.1dte"] == ("50000", "default")
    assert rows["breaker.vpin_trip"] == ("0.8", ".env")
    assert rows["breaker.vpin_clear"] == ("0.5", "default")
    assert rows["breaker.rejects_n"] == ("5", "default")
    assert "breaker.daily_loss_usd" not in rows  # one number: daily_loss_limit_usd
    assert len(rows) == len(describe(s)) == len(config.RISK_LIMIT_NAMES) + len(BUCKETS) * len(
        config.RISK_BUCKET_LIMIT_NAMES) + len(config.RISK_BREAKER_NAMES)
    toml = config.resolve({}, {}, {}, {"risk_limits": "stale_quote_s=5"})
    assert {n: src for n, _, src in describe(toml)}["stale_quote_s"] == "qc.toml"
    assert {src for _, _, src in describe(resolve())} == {"default"}
