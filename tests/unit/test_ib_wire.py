"""Handshake, version rule, framing, the incremental splitter and field values (ref §1, §2)."""

from __future__ import annotations

import math
import struct
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.sim.ib import encode as enc
from qc.sim.ib.wire import (
    MAX_FRAME_LEN,
    UNSET_DOUBLE,
    UNSET_INTEGER,
    Cursor,
    FrameSplitter,
    Handshake,
    HandshakeError,
    WireError,
    dec_bool,
    dec_float,
    dec_int,
    enc_bool,
    enc_float,
    enc_int,
    encode_handshake_reply,
    frame,
    ib_conn_time,
    negotiate_version,
    parse_version_string,
    split_handshake,
)

HELLO = b"API\0" + struct.pack(">I", 9) + b"v157..178"


def test_split_handshake_complete_partial_and_with_trailing_frames() -> None:
    start_api = frame(["71", "2", "1", ""])
    assert split_handshake(HELLO + start_api) == (Handshake(157, 178, ""), start_api)
    for cut in range(len(HELLO)):
        assert split_handshake(HELLO[:cut]) is None


def test_split_handshake_with_connect_options() -> None:
    text = b"v157..178 +PACEAPI"
    assert split_handshake(b"API\0" + struct.pack(">I", len(text)) + text) == (Handshake(157, 178, "+PACEAPI"), b"")


@pytest.mark.parametrize("bad", [b"GET / HTTP/1.1\r\n", b"APX\0", b"API\0" + struct.pack(">I", 5000)])
def test_split_handshake_rejects_garbage(bad: bytes) -> None:
    with pytest.raises(HandshakeError):
        split_handshake(bad)


@pytest.mark.parametrize("text", ["157..178", "vabc..178", "v178..157", "v"])
def test_bad_version_strings(text: str) -> None:
    with pytest.raises(HandshakeError):
        parse_version_string(text)


def test_single_version_string() -> None:
    assert parse_version_string("v176") == Handshake(176, 176, "")


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (157, 178, 178), (100, 176, 176), (157, 200, 178), (178, 178, 178), (179, 200, None), (201, 212, None)])
def test_version_rule(lo: int, hi: int, expected: int | None) -> None:
    assert negotiate_version(Handshake(lo, hi)) == expected


def test_handshake_reply_has_exactly_two_fields() -> None:
    t = datetime(2024, 1, 19, 9, 30, tzinfo=ZoneInfo("US/Eastern"))
    assert ib_conn_time(t) == "20240119 09:30:00 EST"
    reply = encode_handshake_reply(178, ib_conn_time(t))
    assert FrameSplitter().feed(reply) == [["178", "20240119 09:30:00 EST"]]
    assert reply[:4] == struct.pack(">I", len(reply) - 4)


def test_frame_layout_and_utf8() -> None:
    assert frame(["9", "1", "5"]) == b"\0\0\0\x069\x001\x005\x00"
    out = frame(["4", "2", "-1", "2104", "Café"])
    assert struct.unpack(">I", out[:4])[0] == len(out) - 4 == len("4\x002\x00-1\x002104\x00Café\x00".encode())
    assert FrameSplitter().feed(out) == [["4", "2", "-1", "2104", "Café"]]


def test_splitter_keeps_empty_fields_and_tolerates_bad_utf8() -> None:
    assert FrameSplitter().feed(frame(["5", "", "", "x", ""])) == [["5", "", "", "x", ""]]
    raw = b"1\x00\xff\x00"
    assert FrameSplitter().feed(struct.pack(">I", len(raw)) + raw) == [["1", "\\xff"]]


def test_splitter_rejects_oversized_length() -> None:
    with pytest.raises(WireError):
        FrameSplitter().feed(struct.pack(">I", MAX_FRAME_LEN + 1) + b"x")


_field = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
_message = st.lists(_field, min_size=1, max_size=8)


@given(messages=st.lists(_message, min_size=1, max_size=12), cuts=st.lists(st.integers(0, 400), max_size=20))
def test_splitter_recovers_every_message_whatever_the_chunking(messages: list[list[str]], cuts: list[int]) -> None:
    stream = b"".join(frame(m) for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts})
    splitter, got, prev = FrameSplitter(), [], 0
    for p in [*points, len(stream)]:
        got += splitter.feed(stream[prev:p])
        prev = p
    assert got == messages
    assert splitter.pending == 0


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trips(x: float) -> None:
    text = enc_float(x)
    assert dec_float(text) == (None if x == UNSET_DOUBLE else x)


def test_field_conventions() -> None:
    assert (enc_bool(True), enc_bool(False)) == ("1", "0")
    assert (enc_int(None), enc_int(UNSET_INTEGER), enc_int(-1), enc_int(7)) == ("", "", "-1", "7")
    assert (enc_float(None), enc_float(UNSET_DOUBLE), enc_float(math.inf)) == ("", "", "Infinite")
    assert (enc_float(450.0), enc_float(0.1), enc_float(1e-05), enc_float(3)) == ("450", "0.1", "1e-05", "3")
    assert (dec_float(""), dec_float("Infinite"), dec_float("1.7976931348623157E308"), dec_float("0.5")) == (
        None, math.inf, None, 0.5)
    assert (dec_int(""), dec_int("2147483647"), dec_int("-1"), dec_int("3.0")) == (None, None, -1, 3)
    assert (dec_bool("1"), dec_bool("0"), dec_bool(""), dec_bool("true")) == (True, False, False, True)


def test_cursor_reads_in_order_and_reports_running_out() -> None:
    cur = Cursor(["1", "", "2.5", "1", "x"])
    assert (cur.i0(), cur.i(), cur.f(), cur.b(), cur.s(), cur.remaining) == (1, None, 2.5, True, "x", 0)
    with pytest.raises(WireError, match="ended after 5"):
        cur.s()


def test_hot_encoders_match_the_generic_path() -> None:
    """The f-string fast paths must equal the slow, type-driven framing of the same values."""
    assert enc.market_depth_l2(7, 2, "ARCA", 1, 0, 450.25, 300.0) == frame(
        ["13", "1", "7", "2", "ARCA", "1", "0", "450.25", "300", "1"])
    assert enc.tick_price(7, 1, 450.0, 3) == frame(["1", "6", "7", "1", "450", "3", "0"])
    assert enc.realtime_bar(7, 5, 1.5, 2, 1, 1.25, 10, 1.4, 3) == frame(
        ["50", "3", "7", "5", "1.5", "2", "1", "1.25", "10", "1.4", "3"])
