"""TWS API wire codec for `qc sim`: parsing placeOrder as ib_async 2.1.0 sends it (ref ib-api-protocol.md §5).

A plain order is 114 fields at sv 178, but conditional blocks shift everything after them (BAG
legs, delta-neutral, scale, hedge, algo, PEG BENCH, conditions, the sv >= 170 tail), so it is
read with a cursor, run by run, from the tables below (``name:kind``; kinds: ``s`` str, ``i``
int or None, ``i0`` int with empty = 0, ``f`` float or None, ``f0`` float with empty = 0, ``b``
bool). Fields qc's order engine uses are typed attributes of ``PlaceOrder``; the rest are kept
verbatim in ``PlaceOrder.other`` so nothing the client sent is lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from qc.sim.ib import versions as v
from qc.sim.ib.wire import UNSET_DOUBLE, Cursor, WireError
from qc.sim.ib.wire_types import WireContract

PEG_BENCH = frozenset({"PEG BENCH", "PEGBENCH"})
PEG_BEST = frozenset({"PEG BEST", "PEGBEST"})
PEG_MID = frozenset({"PEG MID", "PEGMID"})
# Fields after condType per ib_async order-condition class: Price, Time, Margin, Execution, Volume, %Change.
CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


@dataclass(frozen=True, slots=True)
class ComboLegRef:
    """A BAG leg (reqMktData/reqHistoricalData send the first four fields, placeOrder all eight)."""

    con_id: int
    ratio: int
    action: str
    exchange: str
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int | None = None


@dataclass(frozen=True, slots=True)
class DeltaNeutral:
    con_id: int
    delta: float | None
    price: float | None


@dataclass(frozen=True, slots=True)
class OrderConditionFields:
    """One order condition: its type (1 price, 3 time, 4 margin, 5 execution, 6 volume, 7 %change) and raw fields."""

    cond_type: int
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    """placeOrder (3). Unset prices are ``None``; ``aux_price`` is the STP trigger or TRAIL amount."""

    order_id: int
    contract: WireContract
    sec_id_type: str = ""
    sec_id: str = ""
    action: str = ""
    total_quantity: float = 0.0
    order_type: str = ""
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = ""
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    block_order: bool = False
    sweep_to_fill: bool = False
    display_size: int | None = None
    trigger_method: int = 0
    outside_rth: bool = False
    hidden: bool = False
    discretionary_amt: float | None = None
    good_after_time: str = ""
    good_till_date: str = ""
    model_code: str = ""
    rule80a: str = ""
    all_or_none: bool = False
    min_qty: int | None = None
    percent_offset: float | None = None
    volatility: float | None = None
    volatility_type: int | None = None
    delta_neutral_order_type: str = ""
    continuous_update: bool = False
    reference_price_type: int | None = None
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    scale_price_increment: float | None = None
    hedge_type: str = ""
    hedge_param: str = ""
    not_held: bool = False
    algo_strategy: str = ""
    algo_params: tuple[tuple[str, str], ...] = ()
    algo_id: str = ""
    what_if: bool = False
    order_misc_options: tuple[tuple[str, str], ...] = ()
    solicited: bool = False
    combo_legs: tuple[ComboLegRef, ...] = ()
    order_combo_leg_prices: tuple[float | None, ...] = ()
    smart_combo_routing_params: tuple[tuple[str, str], ...] = ()
    delta_neutral: DeltaNeutral | None = None
    peg_bench: tuple[str, ...] = ()
    conditions: tuple[OrderConditionFields, ...] = ()
    conditions_ignore_rth: bool = False
    conditions_cancel_order: bool = False
    adjusted_order_type: str = ""
    trigger_price: float | None = None
    lmt_price_offset: float | None = None
    adjusted_stop_price: float | None = None
    adjusted_stop_limit_price: float | None = None
    adjusted_trailing_amount: float | None = None
    cash_qty: float | None = None
    duration: int | None = None
    post_to_ats: int | None = None
    auto_cancel_parent: bool = False
    advanced_error_override: str = ""
    manual_order_time: str = ""
    min_trade_qty: int | None = None
    min_compete_size: int | None = None
    compete_against_best_offset: float | None = None
    mid_offset_at_whole: float | None = None
    mid_offset_at_half: float | None = None
    other: tuple[tuple[str, str], ...] = field(default=())

    def extra(self, name: str) -> str | None:
        """A field kept verbatim in ``other`` (e.g. ``settling_firm``), or None if not sent."""
        return dict(self.other).get(name)


_TYPED = frozenset(f.name for f in fields(PlaceOrder))
_READ: dict[str, Callable[[Cursor], Any]] = {
    "s": Cursor.s, "i": Cursor.i, "i0": Cursor.i0, "f": Cursor.f, "b": Cursor.b,
    "f0": lambda cur: cur.f() or 0.0,
}

_HEAD = ("sec_id_type:s sec_id:s action:s total_quantity:f0 order_type:s lmt_price:f aux_price:f tif:s "
         "oca_group:s account:s open_close:s origin:i0 order_ref:s transmit:b parent_id:i0 block_order:b "
         "sweep_to_fill:b display_size:i trigger_method:i0 outside_rth:b hidden:b")
_FA = "deprecated_shares_allocation:s discretionary_amt:f good_after_time:s good_till_date:s fa_group:s " \
      "fa_method:s fa_percentage:s"
_MID = ("model_code:s short_sale_slot:s designated_location:s exempt_code:s oca_type:i0 rule80a:s "
        "settling_firm:s all_or_none:b min_qty:i percent_offset:f e_trade_only:s firm_quote_only:s "
        "nbbo_price_cap:s auction_strategy:s starting_price:s stock_ref_price:s delta:s stock_range_lower:s "
        "stock_range_upper:s override_percentage_constraints:s volatility:f volatility_type:i "
        "delta_neutral_order_type:s delta_neutral_aux_price:s")
_DELTA_NEUTRAL = ("dn_con_id:s dn_settling_firm:s dn_clearing_account:s dn_clearing_intent:s dn_open_close:s "
                  "dn_short_sale:s dn_short_sale_slot:s dn_designated_location:s")
_TRAIL = ("continuous_update:b reference_price_type:i trail_stop_price:f trailing_percent:f "
          "scale_init_level_size:s scale_subs_level_size:s scale_price_increment:f")
_SCALE = ("scale_price_adjust_value:s scale_price_adjust_interval:s scale_profit_offset:s scale_auto_reset:s "
          "scale_init_position:s scale_init_fill_qty:s scale_random_percent:s")
_ACTIVE = "scale_table:s active_start_time:s active_stop_time:s hedge_type:s"
_CLEARING = "opt_out_smart_routing:s clearing_account:s clearing_intent:s not_held:b"
_MISC = "algo_id:s what_if:b order_misc_options:s solicited:b randomize_size:s randomize_price:s"
_ADJUSTED = ("adjusted_order_type:s trigger_price:f lmt_price_offset:f adjusted_stop_price:f "
             "adjusted_stop_limit_price:f adjusted_trailing_amount:f adjustable_trailing_unit:s ext_operator:s "
             "soft_dollar_tier_name:s soft_dollar_tier_value:s cash_qty:f mifid2_decision_maker:s "
             "mifid2_decision_algo:s mifid2_execution_trader:s mifid2_execution_algo:s "
             "dont_use_auto_price_for_hedge:s is_oms_container:s discretionary_up_to_limit_price:s "
             "use_price_mgmt_algo:s")
# (minimum server version, field) appended one by one after _ADJUSTED, as Client.placeOrder does.
_VERSIONED = ((v.MIN_SERVER_VER_DURATION, "duration:i"), (v.MIN_SERVER_VER_POST_TO_ATS, "post_to_ats:i"),
              (v.MIN_SERVER_VER_AUTO_CANCEL_PARENT, "auto_cancel_parent:b"),
              (v.MIN_SERVER_VER_ADVANCED_ORDER_REJECT, "advanced_error_override:s"),
              (v.MIN_SERVER_VER_MANUAL_ORDER_TIME, "manual_order_time:s"))


def _run(cur: Cursor, spec: str, typed: dict[str, Any], other: dict[str, str]) -> None:
    """Read one run of fields named by ``spec`` into typed attributes or ``other``."""
    for item in spec.split():
        name, _, kind = item.partition(":")
        if name in _TYPED:
            typed[name] = _READ[kind](cur)
        else:
            other[name] = cur.s()


def read_contract(cur: Cursor) -> WireContract:
    """The 12-field contract block every request uses (ref §5 "contract(12)")."""
    return WireContract(cur.i0(), cur.s(), cur.s(), cur.s(), cur.f() or 0.0, cur.s(), cur.s(),
                        cur.s(), cur.s(), cur.s(), cur.s(), cur.s())


def read_tag_values(text: str) -> tuple[tuple[str, str], ...]:
    """``tag=value;tag2=value2;`` (one field) → pairs, as ib_async's ``Client.send`` writes lists."""
    return tuple((k, v) for k, _, v in (p.partition("=") for p in text.split(";") if p))


def _pairs(cur: Cursor, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((cur.s(), cur.s()) for _ in range(count))


def _bag(cur: Cursor, typed: dict[str, Any]) -> None:
    """BAG block after ``hidden``: 8-field legs, order-leg prices, smart-routing TagValues."""
    typed["combo_legs"] = tuple(
        ComboLegRef(cur.i0(), cur.i0(), cur.s(), cur.s(), cur.i0(), cur.i0(), cur.s(), cur.i())
        for _ in range(cur.i0()))
    typed["order_combo_leg_prices"] = tuple(cur.f() for _ in range(cur.i0()))
    typed["smart_combo_routing_params"] = _pairs(cur, cur.i0())


def _conditions(cur: Cursor, typed: dict[str, Any]) -> None:
    conds = []
    for _ in range(cur.i0()):
        cond_type = cur.i0()
        n = CONDITION_FIELDS.get(cond_type)
        if n is None:
            raise WireError(f"unknown order condition type {cond_type}")
        conds.append(OrderConditionFields(cond_type, tuple(cur.s() for _ in range(n))))
    if conds:
        typed["conditions"] = tuple(conds)
        typed["conditions_ignore_rth"], typed["conditions_cancel_order"] = cur.b(), cur.b()


def _tail(cur: Cursor, sv: int, typed: dict[str, Any], other: dict[str, str]) -> None:
    """Version-gated fields, then the IBKRATS / PEG BEST / PEG MID extras (PEGBEST_PEGMID_OFFSETS, 170)."""
    for min_sv, spec in _VERSIONED:
        if sv >= min_sv:
            _run(cur, spec, typed, other)
    if sv < v.MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS:
        return
    if typed["contract"].exchange == "IBKRATS":
        typed["min_trade_qty"] = cur.i()
    order_type = typed["order_type"]
    if order_type in PEG_BEST:
        typed["min_compete_size"], typed["compete_against_best_offset"] = cur.i(), cur.f()
    if order_type in PEG_MID or (order_type in PEG_BEST and typed["compete_against_best_offset"] == math.inf):
        typed["mid_offset_at_whole"], typed["mid_offset_at_half"] = cur.f(), cur.f()


def _middle(cur: Cursor, sv: int, typed: dict[str, Any], other: dict[str, str]) -> None:
    """From the FA block to the algo parameters: the runs with conditional inserts between them."""
    _run(cur, _FA + (" fa_profile:s" if sv < v.MIN_SERVER_VER_FA_PROFILE_DESUPPORT else ""), typed, other)
    _run(cur, _MID, typed, other)
    if typed["delta_neutral_order_type"]:
        _run(cur, _DELTA_NEUTRAL, typed, other)
    _run(cur, _TRAIL, typed, other)
    if 0 < (typed["scale_price_increment"] or 0) < UNSET_DOUBLE:
        _run(cur, _SCALE, typed, other)
    _run(cur, _ACTIVE, typed, other)
    if typed["hedge_type"]:
        typed["hedge_param"] = cur.s()
    _run(cur, _CLEARING, typed, other)
    if cur.b():
        typed["delta_neutral"] = DeltaNeutral(cur.i0(), cur.f(), cur.f())
    typed["algo_strategy"] = cur.s()
    if typed["algo_strategy"]:
        typed["algo_params"] = _pairs(cur, cur.i0())


def parse_place_order(cur: Cursor, sv: int) -> PlaceOrder:
    """Read placeOrder from just after its message id, in ``Client.placeOrder``'s order (ref §5)."""
    typed: dict[str, Any] = {"order_id": cur.i0(), "contract": read_contract(cur)}
    other: dict[str, str] = {}
    _run(cur, _HEAD, typed, other)
    if typed["contract"].sec_type == "BAG":
        _bag(cur, typed)
    _middle(cur, sv, typed, other)
    _run(cur, _MISC, typed, other)
    typed["order_misc_options"] = read_tag_values(typed["order_misc_options"])
    if typed["order_type"] in PEG_BENCH:
        typed["peg_bench"] = tuple(cur.s() for _ in range(5))
    _conditions(cur, typed)
    _run(cur, _ADJUSTED, typed, other)
    _tail(cur, sv, typed, other)
    return PlaceOrder(**typed, other=tuple(other.items()))
