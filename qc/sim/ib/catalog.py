"""The simulated gateway's contract catalogue: con_ids, contract details and option-chain parameters.

Stocks are the model's symbols: SPY, QQQ and IWM carry IB's real con_ids, any other symbol a stable
id derived from its name. Options get a stable id from their OCC symbol (crc32, probed on the rare
collision) the first time the catalogue hands them out, and are remembered so later requests that
name only the con_id (orders, market data) resolve. Wildcards follow IB (ref ib-api-protocol.md §5):
strike 0, an empty right and an empty or month-only expiry match every listed contract.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime

from qc.core import clock
from qc.sim.broker.orders import ContractKey
from qc.sim.ib.wire_types import WireContract, WireContractDetails, option_wire_contract
from qc.sim.market.events import MarketModel
from qc.sim.market.models import OptionContract

REAL_CON_IDS = {"SPY": 756733, "QQQ": 320227571, "IWM": 9579970}
PRIMARY = {"SPY": "ARCA", "QQQ": "NASDAQ", "IWM": "ARCA"}
LONG_NAMES = {"SPY": "SPDR S&P 500 ETF TRUST", "QQQ": "INVESCO QQQ TRUST SERIES 1",
              "IWM": "ISHARES RUSSELL 2000 ETF"}
OPTION_ID_BASE = 400_000_000
OPTION_ID_SPAN = 1_600_000_000
STOCK_ID_BASE = 100_000_000
OPTION_EXCHANGES = ("SMART", "CBOE")
RIGHTS = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


@dataclass(frozen=True, slots=True)
class Resolved:
    """One concrete contract: the engine's key, IB's contract block and, for an option, the option."""

    key: ContractKey
    wire: WireContract
    option: OptionContract | None = None

    @property
    def symbol(self) -> str:
        return self.key.symbol


class Catalog:
    """Contracts of one simulated market; options are registered as they are handed out."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self._options: dict[int, OptionContract] = {}
        self._option_ids: dict[OptionContract, int] = {}

    # --- stocks ------------------------------------------------------------------------------------

    def stock_con_id(self, symbol: str) -> int:
        return REAL_CON_IDS.get(symbol) or STOCK_ID_BASE + zlib.crc32(symbol.encode()) % STOCK_ID_BASE

    def stock_for_id(self, con_id: int) -> str | None:
        return next((s for s in self.model.symbols if self.stock_con_id(s) == con_id), None)

    def stock(self, symbol: str) -> Resolved:
        con_id = self.stock_con_id(symbol)
        wire = WireContract(con_id=con_id, symbol=symbol, sec_type="STK", exchange="SMART",
                            primary_exchange=PRIMARY.get(symbol, "ARCA"), currency="USD", local_symbol=symbol,
                            trading_class=symbol)
        return Resolved(ContractKey(con_id, symbol, "STK", 1.0), wire)

    # --- options -----------------------------------------------------------------------------------

    def option_con_id(self, opt: OptionContract) -> int:
        """A stable id for ``opt``, registering it (linear probe on a crc collision)."""
        known = self._option_ids.get(opt)
        if known is not None:
            return known
        con_id = OPTION_ID_BASE + zlib.crc32(opt.occ_symbol.encode()) % OPTION_ID_SPAN
        while con_id in self._options:
            con_id += 1
        self._options[con_id] = opt
        self._option_ids[opt] = con_id
        return con_id

    def option(self, opt: OptionContract) -> Resolved:
        con_id = self.option_con_id(opt)
        key = ContractKey(con_id, opt.underlying, "OPT", float(opt.multiplier), expiry=opt.expiry,
                          strike=float(opt.strike), right=opt.right, under_con_id=self.stock_con_id(opt.underlying))
        return Resolved(key, option_wire_contract(opt, con_id), opt)

    def option_for_id(self, con_id: int) -> OptionContract | None:
        return self._options.get(con_id)

    # --- lookups -----------------------------------------------------------------------------------

    def by_con_id(self, con_id: int) -> Resolved | None:
        symbol = self.stock_for_id(con_id)
        if symbol is not None:
            return self.stock(symbol)
        opt = self._options.get(con_id)
        return None if opt is None else self.option(opt)

    def wire(self, key: ContractKey) -> WireContract:
        """IB's contract block for an engine key (orders, executions, positions)."""
        found = self.by_con_id(key.con_id)
        if found is not None:
            return found.wire
        return WireContract(con_id=key.con_id, symbol=key.symbol, sec_type=key.sec_type, currency="USD",
                            exchange="SMART")

    def resolve(self, c: WireContract, now: datetime) -> Resolved | None:
        """Exactly one contract for an order or a subscription, or None (IB: error 200)."""
        if c.con_id:
            return self.by_con_id(c.con_id)
        if c.sec_type in ("STK", "") and c.symbol in self.model.symbols:
            return self.stock(c.symbol)
        if c.sec_type == "OPT":
            found = self.options(c, now)
            return found[0] if len(found) == 1 else None
        return None

    def options(self, c: WireContract, now: datetime) -> list[Resolved]:
        """Listed options matching ``c`` with IB's wildcards (OCC localSymbol honoured)."""
        symbol = c.symbol or c.local_symbol[:6].strip()
        if symbol not in self.model.symbols:
            return []
        right = RIGHTS.get(c.right.upper(), "")
        out = []
        for q in self.model.option_chain(symbol, now):
            o = q.contract
            if c.last_trade_date and not f"{o.expiry:%Y%m%d}".startswith(c.last_trade_date[:8]):
                continue
            if (c.strike and abs(o.strike - c.strike) > 1e-6) or (right and o.right != right):
                continue
            if c.local_symbol and c.local_symbol.replace(" ", "") != o.occ_symbol.replace(" ", ""):
                continue
            out.append(self.option(o))
        return out

    def details(self, c: WireContract, now: datetime) -> list[WireContractDetails]:
        """reqContractDetails: every match (empty: error 200)."""
        if c.con_id:
            found = self.by_con_id(c.con_id)
            return [] if found is None else [self._details(found)]
        if c.sec_type in ("STK", "") and c.symbol in self.model.symbols:
            return [self._details(self.stock(c.symbol))]
        if c.sec_type == "OPT":
            return [self._details(r) for r in self.options(c, now)]
        return []

    def _details(self, r: Resolved) -> WireContractDetails:
        if r.option is None:
            return WireContractDetails(
                contract=r.wire, market_name=r.symbol, long_name=LONG_NAMES.get(r.symbol, r.symbol),
                valid_exchanges="SMART,AMEX,NYSE,CBOE,ARCA,ISLAND,BATS,IEX,MEMX,EDGEA,BYX,CHX",
                stock_type="ETF" if r.symbol in LONG_NAMES else "COMMON", industry="Funds" if r.symbol in
                LONG_NAMES else "", time_zone_id="US/Eastern", min_tick=0.01)
        opt = r.option
        close = clock.settlement_instant(opt.expiry).astimezone(clock.NEW_YORK)
        return WireContractDetails(
            contract=r.wire, market_name=opt.underlying, min_tick=0.01, valid_exchanges="SMART,CBOE,AMEX,ISE,PHLX",
            under_con_id=self.stock_con_id(opt.underlying), long_name=LONG_NAMES.get(opt.underlying, opt.underlying),
            contract_month=f"{opt.expiry:%Y%m}", last_trade_time=f"{close:%H:%M}", time_zone_id="US/Eastern",
            under_symbol=opt.underlying, under_sec_type="STK", real_expiration_date=f"{opt.expiry:%Y%m%d}")

    def sec_def(self, symbol: str, now: datetime) -> tuple[int, list[str], list[float]] | None:
        """reqSecDefOptParams: (underlying con_id, expirations YYYYMMDD, strikes), or None if unknown."""
        if symbol not in self.model.symbols:
            return None
        chain = self.model.option_chain(symbol, now)
        expiries: set[date] = {q.contract.expiry for q in chain}
        strikes = sorted({q.contract.strike for q in chain})
        return self.stock_con_id(symbol), [f"{d:%Y%m%d}" for d in sorted(expiries)], strikes

