"""`qc up`'s plan for distribution, and which clock a `qc distribute` pointed at the simulator runs on."""

from __future__ import annotations

from typing import cast

import pytest

from qc.core import config
from qc.distribute.channels import from_settings
from qc.runtime.codec import SimClockAnchor
from qc.runtime.simclock import CHANNELS, steers
from qc.runtime.store import Store
from qc.runtime.supervisor import SIM_WEBHOOK, new_webhook_secret, plan_stack, sim_channels_env

NO_STORE = cast(Store, None)  # the plan only closes over the store in its readiness checks, never called here
ANCHOR = SimClockAnchor(1.0, 2.0, 60.0, ib_port=4100, av_port=8800, channels_port=8767)


def settings(**env: str) -> config.Settings:
    return config.resolve({}, env, {}, {})


def names(env: dict[str, str]) -> list[str]:
    return [c.name for c in plan_stack(settings(**env), NO_STORE).children]


def test_with_nothing_configured_distribute_posts_to_the_simulators_channels() -> None:
    plan = plan_stack(settings(QC_SIM_CHANNELS_PORT="9001"), NO_STORE, ("premium", "basic", "free"))
    sim = plan.children[0]
    assert sim.name == "sim" and "--channels-port" in sim.argv and "9001" in sim.argv and sim.setup is not None
    assert plan.children[-1].name == "distribute"
    env = plan.env
    assert env["QC_TELEGRAM_BASE_URL"] == env["QC_X_BASE_URL"] == "http://127.0.0.1:9001"
    assert env["QC_TELEGRAM_CHATS"] == "premium=-1001000000001,basic=-1001000000002,free=-1001000000003"
    assert env["QC_WEBHOOKS"] == "sim=http://127.0.0.1:9001/hooks/sim|premium+basic+free"
    assert env["QC_WEBHOOK_SECRET_SIM"].startswith("whsec_") and env["QC_X_TIERS"] == "free"
    assert any("qc sim ctl channels" in note for note in plan.notes)
    channels = from_settings(settings(**env))  # what the child will parse: valid, every channel on
    assert channels.telegram is not None and channels.x is not None and channels.webhook_secret(SIM_WEBHOOK)
    assert steers(ANCHOR, settings(**{**env, "QC_SIM_CHANNELS_PORT": "8767",
                                      "QC_TELEGRAM_BASE_URL": "http://127.0.0.1:8767"}), (CHANNELS,))


def test_real_channels_are_used_as_configured_and_none_with_a_real_market_starts_no_distribute() -> None:
    real_market = {"QC_IB_HOST": "10.0.0.7", "QC_ALPHA_VANTAGE_API_KEY": "k"}
    assert "distribute" not in names(real_market) and "sim" not in names(real_market)
    hooks = {"QC_WEBHOOKS": "alpha=https://a.example/h|premium", "QC_WEBHOOK_SECRET_ALPHA": new_webhook_secret()}
    plan = plan_stack(settings(**real_market, **hooks), NO_STORE)
    assert [c.name for c in plan.children][-1] == "distribute" and "QC_WEBHOOKS" not in plan.env
    simulated = plan_stack(settings(**hooks), NO_STORE)
    assert "QC_TELEGRAM_CHATS" not in simulated.env and simulated.children[0].setup is None


def test_a_new_secret_each_time_and_one_chat_per_tier() -> None:
    assert new_webhook_secret() != new_webhook_secret()
    env = sim_channels_env(settings(), ("gold", "silver"), "whsec_x")
    assert env["QC_TELEGRAM_CHATS"] == "gold=-1001000000001,silver=-1001000000002" and env["QC_X_TIERS"] == "silver"


@pytest.mark.parametrize(("env", "simulated"), [
    ({"QC_TELEGRAM_BASE_URL": "http://127.0.0.1:8767"}, True),
    ({"QC_X_BASE_URL": "http://localhost:8767"}, True),
    ({"QC_WEBHOOKS": "a=http://127.0.0.1:8767/hooks/a|premium"}, True),
    ({"QC_TELEGRAM_BASE_URL": "http://127.0.0.1:8768"}, False),  # another simulator's channels
    ({}, False),  # production: api.telegram.org, api.x.com
])
def test_distribute_adopts_the_sim_clock_only_when_a_channel_is_the_simulators(env: dict[str, str],
                                                                              simulated: bool) -> None:
    assert steers(ANCHOR, settings(**env), (CHANNELS,)) is simulated
    assert not steers(SimClockAnchor(1.0, 2.0, 60.0, 4100, 8800), settings(**env), (CHANNELS,))  # no channels
