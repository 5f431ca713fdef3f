"""Cash, positions, commissions and account values of the simulated broker's accounts.

IB conventions kept (ib-api-protocol.md §3, ib-execution-and-risk.md §6): ``averageCost`` is per
contract (price × multiplier) and includes the opening commission; realized P&L is net of both
commissions; long US options do not count toward EquityWithLoanValue, so buying one lowers
AvailableFunds by the premium. Simplified: Reg T margin on stock (50 % initial, 25 % long / 30 %
short maintenance), long options paid in full, a short option's requirement is a flat multiple of
its premium (the engine knows no strikes), BuyingPower = 4 × AvailableFunds (intraday Reg T).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qc.sim.broker.orders import ContractKey
from qc.sim.broker.reports import AccountValue, PortfolioRow

CURRENCY = "USD"
SHORT_OPTION_MARGIN_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """IB-tiered-like rates. The minimum applies per order, so the first fill of an order pays it
    and later partial fills pay only what takes the order's total past it."""

    option_per_contract: float = 0.65
    option_min: float = 1.00
    stock_per_share: float = 0.005
    stock_min: float = 1.00
    stock_max_fraction: float = 0.01

    def order_total(self, contract: ContractKey, quantity: float, notional: float) -> float:
        """Commission for an order that has so far filled ``quantity`` for ``notional`` dollars."""
        if quantity <= 0:
            return 0.0
        if contract.is_option:
            return max(self.option_per_contract * quantity, self.option_min)
        fee = max(self.stock_per_share * quantity, self.stock_min)
        return min(fee, self.stock_max_fraction * notional) if notional > 0 else fee


@dataclass(slots=True)
class _Position:
    contract: ContractKey
    quantity: float = 0.0
    cost: float = 0.0  # signed dollars of the open quantity, commissions included
    realized: float = 0.0

    @property
    def average_cost(self) -> float:
        return self.cost / self.quantity if self.quantity else 0.0


@dataclass(slots=True)
class _Account:
    cash: float
    realized: float = 0.0
    positions: dict[int, _Position] = field(default_factory=dict)


class Ledger:
    """Books fills into cash and positions and values them at the latest marks."""

    def __init__(self, initial_cash: dict[str, float]) -> None:
        self._accounts = {name: _Account(cash) for name, cash in initial_cash.items()}
        self._marks: dict[int, float] = {}

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(self._accounts)

    def cash(self, account: str) -> float:
        return self._accounts[account].cash

    def contracts(self) -> list[ContractKey]:
        return [p.contract for a in self._accounts.values() for p in a.positions.values()]

    def set_mark(self, con_id: int, price: float) -> None:
        self._marks[con_id] = price

    def apply_fill(self, account: str, contract: ContractKey, signed_qty: float, price: float,
                   commission: float) -> float | None:
        """Book one fill; return its realized P&L (net of commissions) when it reduced a position."""
        acct = self._accounts[account]
        pos = acct.positions.setdefault(contract.con_id, _Position(contract))
        value = signed_qty * price * contract.multiplier
        acct.cash -= value + commission
        self._marks.setdefault(contract.con_id, price)
        closing = 0.0 if pos.quantity * signed_qty >= 0 else min(abs(signed_qty), abs(pos.quantity))
        close_fraction = closing / abs(signed_qty)
        realized: float | None = None
        if closing > 0:
            basis = pos.cost * closing / abs(pos.quantity)
            realized = -value * close_fraction - basis - commission * close_fraction
            pos.cost -= basis
            pos.realized += realized
            acct.realized += realized
        closed_signed = closing if signed_qty > 0 else -closing
        pos.quantity += closed_signed
        pos.cost += (value + commission) * (1.0 - close_fraction)
        pos.quantity += signed_qty - closed_signed
        if pos.quantity == 0:
            pos.cost = 0.0
        return realized

    def row(self, account: str, con_id: int) -> PortfolioRow:
        pos = self._accounts[account].positions[con_id]
        mark = self._marks.get(con_id, 0.0)
        value = pos.quantity * mark * pos.contract.multiplier
        return PortfolioRow(
            account=account, contract=pos.contract, position=pos.quantity, market_price=mark,
            market_value=value, average_cost=pos.average_cost, unrealized_pnl=value - pos.cost,
            realized_pnl=pos.realized,
        )

    def portfolio(self, account: str) -> list[PortfolioRow]:
        """Every contract the account has held this session (IB keeps closed rows with realized P&L)."""
        return [self.row(account, con_id) for con_id in sorted(self._accounts[account].positions)]

    def positions(self, account: str) -> list[PortfolioRow]:
        return [r for r in self.portfolio(account) if r.position != 0]

    def values(self, account: str) -> tuple[AccountValue, ...]:
        """reqAccountSummary tags and updateAccountValue keys, IB-formatted strings (see module doc)."""
        acct, rows = self._accounts[account], self.portfolio(account)
        stock = [r.market_value for r in rows if not r.contract.is_option]
        short_opt = sum(-r.market_value for r in rows if r.contract.is_option and r.position < 0)
        net_liq = acct.cash + sum(r.market_value for r in rows)
        elv = acct.cash + sum(stock)
        init = 0.5 * sum(abs(v) for v in stock) + SHORT_OPTION_MARGIN_FACTOR * short_opt
        maint = sum(0.25 * v if v > 0 else -0.30 * v for v in stock) + SHORT_OPTION_MARGIN_FACTOR * short_opt
        gross = sum(abs(r.market_value) for r in rows)
        numbers = {
            "NetLiquidation": net_liq, "TotalCashValue": acct.cash, "SettledCash": acct.cash,
            "AccruedCash": 0.0, "EquityWithLoanValue": elv, "GrossPositionValue": gross,
            "InitMarginReq": init, "MaintMarginReq": maint, "AvailableFunds": elv - init,
            "ExcessLiquidity": elv - maint, "BuyingPower": 4.0 * max(elv - init, 0.0),
            "FullInitMarginReq": init, "FullMaintMarginReq": maint, "FullAvailableFunds": elv - init,
            "FullExcessLiquidity": elv - maint, "LookAheadInitMarginReq": init,
            "LookAheadMaintMarginReq": maint, "LookAheadAvailableFunds": elv - init,
            "LookAheadExcessLiquidity": elv - maint,
            "UnrealizedPnL": sum(r.unrealized_pnl for r in rows), "RealizedPnL": acct.realized,
        }
        out = [AccountValue(account, tag, f"{value:.2f}", CURRENCY) for tag, value in numbers.items()]
        ratios = {"Cushion": (elv - maint) / net_liq if net_liq else 0.0,
                  "Leverage": gross / net_liq if net_liq else 0.0}
        out += [AccountValue(account, tag, f"{value:.4f}", "") for tag, value in ratios.items()]
        out += [AccountValue(account, "AccountType", "INDIVIDUAL", ""),
                AccountValue(account, "DayTradesRemaining", "-1", ""),
                AccountValue(account, "Currency", CURRENCY, CURRENCY)]
        return tuple(out)
