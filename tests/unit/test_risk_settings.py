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
    bucketed = {f.name for f in dataclasses.fields(Limits) if isinstance(getattr(Limits(), f.name), Mapping)}
    assert set(config.RISK_BUCKET_LIMIT_NAMES) == bucketed
    assert set(config.RISK_LIMIT_NAMES) == {f.name for f in dataclasses.fields(Limits)} - bucketed
    assert config.RISK_BUCKETS == BUCKETS
    assert set(config.RISK_BREAKER_NAMES) == {f.name for f in dataclasses.fields(BreakerLimits)} - {
        "daily_loss_usd", "drawdown_usd"}


def test_defaults_are_the_dataclasses_defaults() -> None:
    s = resolve()
    assert limits_from(s) == Limits()
    assert breakers_from(s) == BreakerLimits()
    assert (s.execute_client_id, s.risk_halt_ack_s, s.risk_interval_s) == (7, 3.0, 1.0)


def test_overrides_apply_one_bucket_at_a_time_and_off_disables() -> None:
    s = resolve(QC_RISK_LIMITS="max_qty_per_order=5, delta_usd_per_pct_per_bucket.0dte=40000,"
                               "vega_usd_per_vol_pt_per_underlying=off,max_open_orders_per_side=3",
                QC_RISK_BREAKERS="rejects_n=2,vpin_trip=0.7,vpin_clear=0.55")
    limits = limits_from(s)
    assert limits.max_qty_per_order == 5 and limits.max_open_orders_per_side == 3
    assert limits.delta_usd_per_pct_per_bucket["0dte"] == 40_000
    assert limits.delta_usd_per_pct_per_bucket["14dte"] == Limits().delta_usd_per_pct_per_bucket["14dte"]
    assert math.isinf(limits.vega_usd_per_vol_pt_per_underlying)
    assert breakers_from(s) == BreakerLimits(rejects_n=2, vpin_trip=0.7, vpin_clear=0.55)
    loss = resolve(QC_RISK_LIMITS="daily_loss_limit_usd=1500")
    assert breakers_from(loss).daily_loss_usd == 1500  # one number: the check and the breaker agree


@pytest.mark.parametrize(("env", "value", "words"), [
    ("QC_RISK_LIMITS", "max_qty_per_ordr=5", "did you mean 'max_qty_per_order'"),
    ("QC_RISK_LIMITS", "delta_usd_per_pct_per_bucket.odte=1", "unknown bucket 'odte'"),
    ("QC_RISK_LIMITS", "max_qty_per_order=-1", "≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order=nan", "≥ 0"),
    ("QC_RISK_LIMITS", "max_qty_per_order=ten", "expected a number"),
    ("QC_RISK_LIMITS", "max_qty_per_order", "name=value"),
    ("QC_RISK_BREAKERS", "rejects_n=off", "expected a number"),
    ("QC_EXECUTE_CLIENT_ID", "1", "must differ from QC_IB_CLIENT_ID"),
])
def test_bad_values_are_one_line_errors_naming_the_field(env: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve(**{env: value})
    message = str(err.value)
    assert words in message and env in message and "\n" not in message


@pytest.mark.parametrize(("env", "value", "words"), [
    ("QC_RISK_BREAKERS", "vpin_clear=0.7", "vpin_clear/vpin_trip"),
    ("QC_RISK_BREAKERS", "rejects_n=2.5", "whole number"),
    ("QC_RISK_LIMITS", "max_msgs_per_s=2.5", "whole number"),
])
def test_values_the_dataclasses_refuse_are_config_errors_at_start(env: str, value: str, words: str) -> None:
    s = resolve(**{env: value})
    with pytest.raises(ConfigError) as err:
        breakers_from(s)
    assert words in str(err.value) and env in str(err.value) and "\n" not in str(err.value)


def test_describe_names_every_limit_with_its_source() -> None:
    s = config.resolve({}, {"QC_RISK_LIMITS": "max_qty_per_order=5"}, {"QC_RISK_BREAKERS": "vpin_trip=0.8"}, {})
    rows = {name: (value, source) for name, value, source in describe(s)}
    assert rows["max_qty_per_order"] == ("5", "env")
    assert rows["max_premium_per_order_usd"] == ("10000", "default")
    assert rows["breaker.vpin_trip"] == ("0.8", ".env")
    assert rows["delta_usd_per_pct_per_bucket.0dte"] == ("50000", "default")
    assert len(rows) == len(config.RISK_LIMIT_NAMES) + 4 * len(config.RISK_BUCKET_LIMIT_NAMES) + len(
        config.RISK_BREAKER_NAMES)
