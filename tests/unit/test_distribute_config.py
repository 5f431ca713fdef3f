"""Distribution settings and the routing they build: tiers in order with their exact delays, one Telegram
chat per tier, webhooks with explicit tiers and https, X's tiers, lateness bounds; every bad string is one
ConfigError naming its variable (never echoing a URL's path or a secret); the plan of one signal."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.errors import ConfigError
from qc.distribute import config
from qc.distribute.model import MAX_LATENESS_S, Delivery, Routing, Target, Tier

TIERS = config.parse_tiers(config.DEFAULT_TIERS)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def error(fn: object, *args: object) -> ConfigError:
    with pytest.raises(ConfigError) as got:
        fn(*args)  # type: ignore[operator]
    return got.value


# --- tiers ------------------------------------------------------------------------------------------------

def test_default_tiers_are_premium_basic_free_in_seconds() -> None:
    assert (Tier("premium", 0.0), Tier("basic", 60.0), Tier("free", 300.0)) == TIERS


def test_tiers_accept_spaces_case_and_decimals() -> None:
    assert config.parse_tiers(" VIP = 0 , pro=0.5,late=3600,") == (Tier("vip", 0.0), Tier("pro", 0.5),
                                                                   Tier("late", 3600.0))


@pytest.mark.parametrize(("raw", "says"), [
    ("", "no tier"), ("premium", "expected name=value"), ("premium=0,basic=x", "expected seconds"),
    ("premium=-1", "outside"), ("premium=nan", "outside"), ("premium=inf", "outside"),
    ("premium=0,basic=60000", "outside"), ("premium=0,premium=60", "given twice"),
    ("premium=0,free=300,basic=60", "comes after"), ("pre-mium=0", "not a valid name"), ("=5", "not a valid name"),
    ("a" * 33 + "=0", "not a valid name"),
])
def test_bad_tiers_name_the_variable(raw: str, says: str) -> None:
    exc = error(config.parse_tiers, raw)
    assert exc.field == "QC_DISTRIBUTE_TIERS" and says in exc.problem
    assert str(exc).startswith("QC_DISTRIBUTE_TIERS: ") and "\n" not in str(exc)


def test_a_delay_in_milliseconds_is_caught_with_a_hint() -> None:
    exc = error(config.parse_tiers, "premium=0,basic=60000")
    assert exc.hint is not None and "milliseconds" in exc.hint


# --- Telegram ---------------------------------------------------------------------------------------------

def test_telegram_chats_one_per_tier() -> None:
    got = config.parse_telegram_chats("premium=-1001234567890, basic=-1009876543210 ,free=@qc_free", TIERS)
    assert got == (Target("telegram", "premium", ("premium",), chat_id="-1001234567890"),
                   Target("telegram", "basic", ("basic",), chat_id="-1009876543210"),
                   Target("telegram", "free", ("free",), chat_id="@qc_free"))
    assert config.parse_telegram_chats("", TIERS) == ()


@pytest.mark.parametrize(("raw", "says"), [
    ("gold=-1001", "unknown tier"), ("premium=chat", "is not a chat"), ("premium=@abc", "is not a chat"),
    ("premium=-1001,premium=-1002", "two chats"), ("premium=-1001,basic=-1001", "serves two tiers"),
    ("premium", "expected name=value"), ("premium=", "is not a chat"), ("premium=0", "is not a chat"),
])
def test_bad_telegram_chats_name_the_variable(raw: str, says: str) -> None:
    exc = error(config.parse_telegram_chats, raw, TIERS)
    assert exc.field == "QC_TELEGRAM_CHATS" and says in exc.problem


# --- webhooks ---------------------------------------------------------------------------------------------

def test_webhooks_syntax() -> None:
    raw = ("alpha=https://alpha.example/qc/hook?src=qc&x=1|premium;\n"
           " Beta = https://b.example:8443/in|basic+free ; local=http://127.0.0.1:9000/h|free")
    alpha, beta, local = config.parse_webhooks(raw, TIERS)
    assert (alpha.name, alpha.url, alpha.tiers) == ("alpha", "https://alpha.example/qc/hook?src=qc&x=1",
                                                    ("premium",))
    assert (beta.name, beta.url, beta.tiers) == ("beta", "https://b.example:8443/in", ("basic", "free"))
    assert local.url == "http://127.0.0.1:9000/h" and local.channel == "webhook"
    assert config.parse_webhooks("  ", TIERS) == ()


@pytest.mark.parametrize(("raw", "says"), [
    ("alpha=https://a.example/h", "which tiers"), ("alpha=https://a.example/h|", "empty tier"),
    ("alpha=https://a.example/h|gold", "unknown tier"), ("alpha=https://a.example/h|free+free", "given twice"),
    ("alpha=http://a.example/h|free", "plain http"), ("alpha=ftp://a.example/h|free", "http(s) URL"),
    ("alpha=|free", "no URL"), ("alpha=https:///path|free", "http(s) URL"),
    ("alpha=https://a.example:99999/h|free", "not a valid URL"),
    ("alpha=https://a.example/a b|free", "a space"), ("alpha=https://a.example/h|free;alpha=https://b.c/|free",
                                                      "defined twice"),
    ("https://a.example/h|free", "expected name=value (an entry"),
    ("al-pha=https://a.example/h|free", "not a valid name"),
    ("https://a.example/h?k=v|free", "webhook is not a valid name"),
])
def test_bad_webhooks_name_the_variable(raw: str, says: str) -> None:
    exc = error(config.parse_webhooks, raw, TIERS)
    assert exc.field == "QC_WEBHOOKS" and says in exc.problem, exc
    assert "/h" not in exc.problem and "/path" not in exc.problem and "/a b" not in exc.problem  # no URL path


def test_webhook_errors_never_print_the_path_or_credentials() -> None:
    exc = error(config.parse_webhooks, "alpha=http://user:pw@hooks.example/T000/B000/XXXXSECRET?token=abc|free",
                TIERS)
    assert "XXXXSECRET" not in str(exc) and "pw" not in str(exc) and "abc" not in str(exc)
    assert "hooks.example" in str(exc)


def test_a_url_is_kept_out_of_a_targets_repr() -> None:
    (target,) = config.parse_webhooks("alpha=https://h.example/T0/SECRETPATH|free", TIERS)
    assert "SECRETPATH" not in repr(target)


# --- X and lateness ---------------------------------------------------------------------------------------

def test_x_tiers() -> None:
    assert config.parse_x_tiers("free", TIERS) == (Target("x", "account", ("free",)),)
    assert config.parse_x_tiers("basic, free", TIERS) == (Target("x", "account", ("basic", "free")),)
    assert config.parse_x_tiers("", TIERS) == ()
    assert error(config.parse_x_tiers, "gold", TIERS).field == "QC_X_TIERS"
    assert "given twice" in error(config.parse_x_tiers, "free,FREE", TIERS).problem


def test_max_lateness_overrides_the_defaults() -> None:
    assert dict(config.parse_max_lateness("")) == dict(MAX_LATENESS_S)
    got = config.parse_max_lateness("telegram=90, X=600")
    assert (got["telegram"], got["webhook"], got["x"]) == (90.0, 900.0, 600.0)
    for raw in ("telegram=0", "telegram=-5", "sms=10", "telegram=1,telegram=2", "webhook=3601", "x=abc"):
        assert error(config.parse_max_lateness, raw).field == "QC_DISTRIBUTE_MAX_LATENESS", raw


def test_the_default_lateness_bounds() -> None:
    assert dict(MAX_LATENESS_S) == {"telegram": 120.0, "webhook": 900.0, "x": 300.0}


# --- every string parses or names its variable ------------------------------------------------------------

syntax = st.text(alphabet=st.sampled_from(list("premiumbasicfre=,;|+:/.@-_ 0123456789htpsx?&\n\tÉ")), max_size=80)
anything = st.text(max_size=80) | syntax
names_ish = st.sampled_from(["premium", "basic", "free", "Free", "x", "", "a-b"])


def field_of(fn: Callable[..., object], *args: object) -> str | None:
    """None when ``fn`` accepts the arguments, else the field its ConfigError names."""
    try:
        fn(*args)
    except ConfigError as exc:
        return exc.field
    return None


@given(anything)
def test_any_tiers_string_parses_or_names_its_variable(raw: str) -> None:
    assert field_of(config.parse_tiers, raw) in (None, "QC_DISTRIBUTE_TIERS")


@given(anything, anything, anything, anything)
def test_any_other_string_parses_or_names_its_variable(chats: str, hooks: str, x: str, late: str) -> None:
    assert field_of(config.parse_telegram_chats, chats, TIERS) in (None, "QC_TELEGRAM_CHATS")
    assert field_of(config.parse_webhooks, hooks, TIERS) in (None, "QC_WEBHOOKS")
    assert field_of(config.parse_x_tiers, x, TIERS) in (None, "QC_X_TIERS")
    assert field_of(config.parse_max_lateness, late) in (None, "QC_DISTRIBUTE_MAX_LATENESS")


@given(st.lists(st.tuples(names_ish, st.floats(allow_nan=True) | st.text(max_size=8)), max_size=6))
def test_tier_lists_that_parse_are_ordered_and_bounded(pairs: list[tuple[str, float | str]]) -> None:
    raw = ",".join(f"{name}={value}" for name, value in pairs)
    if field_of(config.parse_tiers, raw) is not None:
        return
    got = config.parse_tiers(raw)
    assert all(math.isfinite(t.delay_s) and 0 <= t.delay_s <= 3600 for t in got)
    assert [t.delay_s for t in got] == sorted(t.delay_s for t in got)
    assert len({t.name for t in got}) == len(got)


# --- secrets ----------------------------------------------------------------------------------------------

def test_webhook_secret_lives_in_its_own_variable() -> None:
    assert config.webhook_secret_env("alpha") == "QC_WEBHOOK_SECRET_ALPHA"
    assert config.is_webhook_secret_env("QC_WEBHOOK_SECRET_ALPHA")
    assert not config.is_webhook_secret_env("QC_WEBHOOK_SECRET_") and not config.is_webhook_secret_env("QC_WEBHOOKS")
    assert not config.is_webhook_secret_env("QC_WEBHOOK_SECRET_alpha")
    assert config.webhook_secret("alpha", {"QC_WEBHOOK_SECRET_ALPHA": f" {SECRET} "}) == SECRET


@pytest.mark.parametrize(("value", "says"), [
    ("", "not set"), ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "does not start with whsec_"),
    ("whsec_***notbase64***", "not valid base64"), ("whsec_" + base64.b64encode(b"short").decode(), "5 bytes"),
    ("whsec_" + base64.b64encode(b"k" * 65).decode(), "65 bytes"),
])
def test_a_bad_secret_names_its_variable_never_its_value(value: str, says: str) -> None:
    exc = error(config.webhook_secret, "alpha", {"QC_WEBHOOK_SECRET_ALPHA": value})
    assert exc.field == "QC_WEBHOOK_SECRET_ALPHA" and says in exc.problem
    if value:
        assert value not in str(exc) and value[6:] not in str(exc)


# --- the routing and the plan -----------------------------------------------------------------------------

def routing() -> Routing:
    return config.routing(telegram="premium=-1001,basic=-1002,free=@qc_free",
                          webhooks="alpha=https://a.example/h|premium; beta=https://b.example/h|basic+free")


def test_plan_gives_each_target_its_tiers_delay_exactly() -> None:
    published = 1_796_311_800.25
    plan = routing().plan("1796311800000a1b2c3d4", "SPY", published)
    due = {(d.tier, d.channel, d.target): d.due for d in plan}
    assert due == {
        ("premium", "telegram", "premium"): published, ("premium", "webhook", "alpha"): published,
        ("basic", "telegram", "basic"): published + 60, ("basic", "webhook", "beta"): published + 60,
        ("free", "telegram", "free"): published + 300, ("free", "webhook", "beta"): published + 300,
        ("free", "x", "account"): published + 300}
    assert all(d.first_due == d.due and d.attempt == 1 and d.published == published for d in plan)
    assert [d.tier for d in plan] == sorted((d.tier for d in plan), key=["premium", "basic", "free"].index)


def test_premium_and_basic_are_protected_free_is_not() -> None:
    r = routing()
    assert (r.protects("premium"), r.protects("basic"), r.protects("free")) == (True, True, False)


def test_routing_lookups() -> None:
    r = routing()
    assert r.tier("basic") == Tier("basic", 60.0) and r.max_lateness("telegram") == 120.0
    beta = r.target("webhook", "beta")
    assert beta is not None and beta.receives("free") and not beta.receives("premium")
    assert r.target("webhook", "gamma") is None
    assert {t.name for t in r.targets_for("free")} == {"free", "beta", "account"}
    with pytest.raises(ValueError, match="unknown tier"):
        r.tier("gold")


def test_each_setting_names_itself_in_the_whole_routing() -> None:
    assert error(lambda: config.routing(tiers="premium=x")).field == "QC_DISTRIBUTE_TIERS"
    assert error(lambda: config.routing(telegram="gold=-1")).field == "QC_TELEGRAM_CHATS"
    assert error(lambda: config.routing(webhooks="a=https://h/|gold")).field == "QC_WEBHOOKS"
    assert error(lambda: config.routing(x_tiers="basic", tiers="premium=0")).field == "QC_X_TIERS"
    assert error(lambda: config.routing(max_lateness="x=0")).field == "QC_DISTRIBUTE_MAX_LATENESS"


@pytest.mark.parametrize(("build", "says"), [
    (lambda: Routing(()), "no tier"),
    (lambda: Routing((Tier("a", 0), Tier("a", 1))), "named twice"),
    (lambda: Routing((Tier("a", 60), Tier("b", 0))), "order of delay"),
    (lambda: Routing((Tier("a", 0),), (Target("x", "account", ("b",)),)), "unknown tier"),
    (lambda: Routing((Tier("a", 0),), (Target("x", "account", ("a",)), Target("x", "account", ("a",)))), "twice"),
    (lambda: Routing((Tier("a", 0),), max_lateness_s={"telegram": 1.0}), "max lateness"),
    (lambda: Tier("a", math.nan), "finite"), (lambda: Tier("a", 3601), "outside"), (lambda: Tier("A", 0), "name"),
    (lambda: Target("telegram", "a", ("a", "b"), chat_id="-1"), "one chat serves one tier"),
    (lambda: Target("telegram", "a", ("a",)), "needs a chat id"),
    (lambda: Target("webhook", "a", ("a",)), "needs a URL"),
    (lambda: Target("x", "account", ("a",), url="https://x"), "no chat id, no URL"),
    (lambda: Target("x", "account", ()), "no tier"),
    (lambda: Target("sms", "a", ("a",)), "unknown channel"),  # type: ignore[arg-type]
])
def test_model_values_refuse_what_config_would_never_build(build: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        build()  # type: ignore[operator]


# --- the queued item's invariants -------------------------------------------------------------------------

T0 = 1_796_311_800.0


def item(**changes: object) -> Delivery:
    fields: dict[str, object] = {"signal_id": "1796311800000a1b2c3d4", "symbol": "SPY", "tier": "basic",
                                 "channel": "telegram", "target": "basic", "due": T0 + 60, "published": T0,
                                 "attempt": 1, "first_due": T0 + 60}
    fields.update(changes)
    return Delivery(**fields)  # type: ignore[arg-type]


def test_delivery_first_is_due_after_the_tier_delay() -> None:
    d = Delivery.first("1796311800000a1b2c3d4", "SPY", Tier("basic", 60.0), "telegram", "basic", T0)
    assert d == item()
    assert d.ident == "1796311800000a1b2c3d4:basic:telegram:basic"


def test_never_early_and_lateness_from_the_first_promise() -> None:
    d = item()
    assert not d.is_due(T0 + 59.999) and d.is_due(T0 + 60)
    later = d.retried(T0 + 65)
    assert (later.attempt, later.due, later.first_due) == (2, T0 + 65, T0 + 60)
    assert later.lateness(T0 + 100) == 40.0
    waited = d.deferred(T0 + 90)
    assert (waited.attempt, waited.due) == (1, T0 + 90)
    assert d.retried(T0).due == T0 + 60  # a retry never moves an item before its due time


@pytest.mark.parametrize(("changes", "says"), [
    ({"due": T0 * 1000, "first_due": T0 * 1000}, "milliseconds"), ({"published": -1.0}, "Unix seconds"),
    ({"due": math.nan}, "finite"), ({"due": T0 + 59}, "never early"), ({"first_due": T0 - 1, "due": T0}, "before"),
    ({"attempt": 0}, "attempt"), ({"attempt": True}, "attempt"), ({"channel": "sms"}, "unknown channel"),
    ({"signal_id": "a:b"}, "signal id"), ({"symbol": "spy"}, "symbol"), ({"tier": "Basic"}, "tier"),
    ({"target": ""}, "target"),
])
def test_delivery_refuses_bad_values(changes: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        item(**changes)
