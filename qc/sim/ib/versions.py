"""Server versions the simulated gateway speaks, and every version at which a message layout changes.

Why one table: a real TWS answers the handshake with ``min(client max, its own max)`` and from then
on writes every message in *that* version's layout. The simulator does the same, so each encoder
whose layout moves inside the accepted range takes the session's negotiated version and consults
the thresholds below (named as the official API's ``server_versions.py`` names them); no encoder
or parser compares a version against a bare number.

Layout changes inside 157..178, read from ib_async 2.1.0's ``decoder.py`` / ``client.py`` and the
official ibapi 10.x ``decoder.py`` / ``orderdecoder.py`` (ref ib-api-protocol.md §3, §4):

=====================  ===========================================================================
server → client
error (4)              advancedOrderRejectJson from ADVANCED_ORDER_REJECT (166)
contractDetails (10)   below SIZE_RULES (164): a message version after the id and mdSizeMultiplier
                       after minTick; at FRACTIONAL_SIZE_SUPPORT (163) only: one sizeMinTick field
                       after stockType; from SIZE_RULES: minSize, sizeIncrement, suggestedSizeIncrement
openOrder (5)          faProfile below FA_PROFILE_DESUPPORT (177); duration from DURATION (158; ib_async
                       reads it from 159, where it is then a trailing field it ignores); postToAts from
                       POST_TO_ATS (160); autoCancelParent from AUTO_CANCEL_PARENT (162); minTradeQty,
                       minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole/Half from
                       PEGBEST_PEGMID_OFFSETS (170)
completedOrder (101)   faProfile below 177; the five PEG BEST/MID fields from 170
execDetails (11)       pendingPriceRevision from PENDING_PRICE_REVISION (178)
client → server
placeOrder (3)         faProfile below 177; duration 158; postToAts 160; autoCancelParent 162;
                       advancedErrorOverride 166; manualOrderTime 169; PEG BEST/MID extras 170
cancelOrder (4)        manualOrderCancelTime from MANUAL_ORDER_TIME (169)
reqContractDetails (9) issuerId from BOND_ISSUERID (176)
=====================  ===========================================================================

Every other message the simulator sends has a single layout across 157..178 (the tests decode all
of them at 157, 176 and 178). Fields that some clients ask about arrive only above this range and
are therefore never sent: customerAccount (183) and professionalCustomer (184) in orders, submitter
(198) in orders and executions, errorTime (194), historicalDataEnd (196), protobuf framing (201+).
Semantics that changed in the range but not layouts (sizes in shares from MARKET_DATA_IN_SHARES 159 /
HMDS_MARKET_DATA_IN_SHARES 175, fractional sizes from 163) are not emulated: sizes are always shares.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_SERVER_VER_REPLACE_FA_END = 157  # the lowest version ib_async 2.1 (and the simulator) accepts
MIN_SERVER_VER_DURATION = 158
MIN_SERVER_VER_POST_TO_ATS = 160
MIN_SERVER_VER_AUTO_CANCEL_PARENT = 162
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163
MIN_SERVER_VER_SIZE_RULES = 164
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166
MIN_SERVER_VER_MANUAL_ORDER_TIME = 169
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170
MIN_SERVER_VER_BOND_ISSUERID = 176
MIN_SERVER_VER_FA_PROFILE_DESUPPORT = 177
MIN_SERVER_VER_PENDING_PRICE_REVISION = 178

MIN_SERVER_VERSION = MIN_SERVER_VER_REPLACE_FA_END
MAX_SERVER_VERSION = MIN_SERVER_VER_PENDING_PRICE_REVISION  # 201+ would switch to protobuf (ref §1)
SUPPORTED_VERSIONS = range(MIN_SERVER_VERSION, MAX_SERVER_VERSION + 1)

CONTRACT_DETAILS_MSG_VERSION = 8  # the message version TWS wrote before SIZE_RULES dropped it
MD_SIZE_MULTIPLIER = 1  # sizes travel in shares, so the obsolete multiplier (read, then ignored) is 1


@dataclass(frozen=True, slots=True)
class Gate:
    """The versions that carry a field: ``since <= sv < until``."""

    since: int = MIN_SERVER_VERSION
    until: int = MAX_SERVER_VERSION + 1

    def open(self, sv: int) -> bool:
        return self.since <= sv < self.until


ALWAYS = Gate()


def since(version: int) -> Gate:
    """A field added at ``version``."""
    return Gate(since=version)


def before(version: int) -> Gate:
    """A field removed at ``version``."""
    return Gate(until=version)


def check(sv: int) -> int:
    """``sv`` itself, or ``ValueError`` when the simulator has no layouts for it."""
    if sv not in SUPPORTED_VERSIONS:
        raise ValueError(f"server version {sv} is outside {MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}")
    return sv
