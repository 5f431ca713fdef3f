"""``qc.runtime.redis_batch.pack`` sends the very bytes redis-py's own packer would, for every value type the
stream queues (str with any unicode, int, float), and refuses what redis-py refuses (``DataError``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.connection import Connection
from redis.exceptions import DataError

from qc.runtime.redis_batch import Value, pack

values = st.text(max_size=40) | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
commands = st.lists(st.tuples(st.sampled_from(["HSET", "EXPIRE", "XADD", "HDEL"]), st.text(min_size=1, max_size=30))
                    .flatmap(lambda head: st.lists(values, max_size=8).map(lambda rest: (*head, *rest))),
                    min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_pack_is_byte_for_byte_redis_pys_pack_commands(cmds: list[tuple[Value, ...]]) -> None:
    assert pack(cmds) == b"".join(Connection().pack_commands(cmds))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("bad", [None, True, object(), ["a"]])
def test_a_value_redis_cannot_take_is_a_data_error_naming_the_command(bad: object) -> None:
    with pytest.raises(DataError, match="HSET"):
        pack([("HSET", "market:SPY:quote", "bid", bad)])  # type: ignore[list-item]
