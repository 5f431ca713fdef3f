"""What happens to an option position at its expiry: it lapses, or it is exercised or assigned.

The clearing house's rule (ib-execution-and-risk.md §3, OCC exercise by exception): an option
in the money by at least $0.01 at the underlying's close is exercised automatically; anything
less (out of the money, at the money, or in the money by under a cent) expires worthless. A long
position is exercised, a short one is assigned, and either way the option position goes to 0:

- long call, in the money: buy multiplier × qty shares at the strike (exercise);
- long put, in the money: sell multiplier × qty shares at the strike (exercise);
- short call, in the money: sell multiplier × qty shares at the strike (assignment);
- short put, in the money: buy multiplier × qty shares at the strike (assignment);
- otherwise it lapses: a long's cost is a realised loss, a short's premium is kept.

So the shares delivered into the account are always ``option quantity × multiplier`` signed
+1 for a call and −1 for a put (a short call's negative quantity sells, a long put sells, a
short put's negative quantity times −1 buys).

Pure: no ledger, no time. The broker (``SimBroker.settle_expiring``) books the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from qc.sim.broker.orders import ContractKey

Outcome = Literal["expired", "exercised", "assigned"]

MIN_IN_THE_MONEY = 0.01  # OCC exercise by exception
_CENT_EPSILON = 1e-9  # 600.01 − 600.00 is 0.00999999… in binary floating point


@dataclass(frozen=True, slots=True)
class Settlement:
    """One option position's fate at expiry.

    ``quantity`` is the signed option position before settlement; ``stock`` and
    ``stock_quantity`` (signed shares into the account) are None/0 when it expired.
    """

    account: str
    option: ContractKey
    quantity: float
    close: float
    outcome: Outcome
    stock: ContractKey | None
    stock_quantity: float

    @property
    def in_the_money(self) -> float:
        return intrinsic(self.option, self.close)


def expires_by(contract: ContractKey, day: date) -> bool:
    """An option whose expiry is ``day`` or earlier (an earlier one is a close the clock skipped)."""
    return contract.is_option and contract.expiry is not None and contract.expiry <= day


def intrinsic(option: ContractKey, close: float) -> float:
    """How far in the money ``option`` is at ``close`` (negative: out of the money)."""
    if option.right == "C":
        return close - option.strike
    if option.right == "P":
        return option.strike - close
    raise ValueError(f"option {option.con_id} has no right (C/P): cannot settle it")


def underlying_of(option: ContractKey) -> ContractKey:
    """The stock an exercise or assignment of ``option`` delivers."""
    if not option.under_con_id:
        raise ValueError(f"option {option.con_id} names no underlying con_id: cannot deliver its shares")
    return ContractKey(option.under_con_id, option.symbol, "STK", 1.0)


def decide(account: str, option: ContractKey, quantity: float, close: float) -> Settlement:
    """Settle ``quantity`` (signed, non-zero) of ``option`` against the underlying's ``close``."""
    if quantity == 0:
        raise ValueError("nothing to settle: the position is 0")
    if intrinsic(option, close) < MIN_IN_THE_MONEY - _CENT_EPSILON:
        return Settlement(account, option, quantity, close, "expired", None, 0.0)
    sign = 1.0 if option.right == "C" else -1.0
    outcome: Outcome = "exercised" if quantity > 0 else "assigned"
    return Settlement(account, option, quantity, close, outcome, underlying_of(option),
                      sign * quantity * option.multiplier)
