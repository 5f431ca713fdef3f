"""A real, unmodified ``ib_async.IB`` fed our frames the way its socket would, without a socket.

Bytes go in through ``Connection.data_received`` (the asyncio Protocol callback a real socket
calls), so ib_async's own framing, handshake detection, ``Decoder.interpret`` and ``Wrapper`` run
unchanged. Requests the client sends meanwhile are dropped by its ``Connection`` (no transport).
ib_async's decoder swallows exceptions and logs them, so every ERROR it logs fails the feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB

from qc.sim.ib import encode as enc
from qc.sim.ib.wire import SERVER_VERSION, encode_handshake_reply

ACCOUNT = "DU1234567"
CLIENT_ID = 7
FIRST_ID = 100  # nextValidId: the first request id the client hands out


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Session:
    """One IB client past its handshake (server version 178), ready for ``feed``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.log = _Collect()
        logging.getLogger("ib_async").addHandler(self.log)
        self.ib = IB()
        self.ib.wrapper.clientId = CLIENT_ID  # what IB.connectAsync does first
        self.ib.client.clientId = CLIENT_ID
        self.feed(encode_handshake_reply(SERVER_VERSION, "20240119 09:30:00 EST"),
                  enc.managed_accounts([ACCOUNT]), enc.next_valid_id(FIRST_ID))
        assert self.ib.client.isReady()
        assert self.ib.client.serverVersion() == SERVER_VERSION

    def close(self) -> None:
        logging.getLogger("ib_async").removeHandler(self.log)
        self.loop.close()
        asyncio.set_event_loop(None)

    def feed(self, *frames: bytes, allow_errors: bool = False) -> None:
        """Deliver frames as one TCP read; fail on anything ib_async logged as an error."""
        before = len(self.log.records)
        conn: Any = self.ib.client.conn  # ib_async is untyped; this is the socket's data callback
        conn.data_received(b"".join(frames))
        new = self.log.records[before:]
        decode_failures = [r.getMessage() for r in new if r.name == "ib_async.Decoder"]
        assert not decode_failures, decode_failures  # a message ib_async could not read: always a bug
        if not allow_errors:
            assert not new, [r.getMessage() for r in new]

    def request(self, start: Callable[[], Awaitable[Any]], *frames: bytes, allow_errors: bool = False) -> Any:
        """Start an ib_async request, answer it with ``frames``, return what ib_async returns."""
        async def go() -> Any:
            task = asyncio.ensure_future(start())
            await asyncio.sleep(0)  # let the request register its future
            self.feed(*frames, allow_errors=allow_errors)
            return await asyncio.wait_for(task, 2)

        return self.loop.run_until_complete(go())
