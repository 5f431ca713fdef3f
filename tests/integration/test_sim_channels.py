"""`qc sim`'s Telegram, X and webhook stand-ins as a sender meets them: a whole simulator process,
real HTTP with ``requests``, faults and counts through `qc sim ctl`, the port found in the clock anchor."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from qc.core.clock import SimClock
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import Store
from qc.sim.channels.server import ChannelsServer

from .conftest import RedisServer, eventually

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "123456:sim-token"
LABELS = ("ib", "alpha", "control", "clock", "channels")


class ChannelSim:
    """A running `qc sim` and its announced listeners."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc, self.lines = proc, lines

    def port(self, label: str) -> int:
        line = next(line for line in self.lines if line.startswith(label))
        return int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port('channels')}"

    def ctl(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(self.port("control")),
                               *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def channels(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.ctl("channels", "--json"))["channels"]
        return {row["channel"]: row for row in rows}

    def telegram(self, chat: Any, text: str, **extra: Any) -> requests.Response:
        return requests.post(f"{self.url}/bot{TOKEN}/sendMessage", json={"chat_id": chat, "text": text, **extra},
                             timeout=10)

    def tweet(self, text: str) -> requests.Response:
        return requests.post(f"{self.url}/2/tweets", json={"text": text}, headers={"Authorization": "Bearer sim"},
                             timeout=10)


@pytest.fixture(scope="module")
def sim(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelSim]:
    env = {**os.environ, "QC_REDIS_URL": redis_server.url}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port", "0",
                             "--channels-port", "0", "--start", "2026-11-24 15:40", "--speed", "1", "--seed", "7"],
                            cwd=tmp_path_factory.mktemp("channels-sim"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < len(LABELS):
        line = proc.stdout.readline()
        assert line, "qc sim exited early"
        lines.append(line.strip())
    yield ChannelSim(proc, lines)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_the_default_port_falls_back_when_taken_but_a_chosen_one_does_not() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    chosen = ChannelsServer(lambda: 0.0, port=port)
    default = ChannelsServer(lambda: 0.0, port=port)
    try:
        with pytest.raises(OSError, match="in use"):
            chosen.start()
        assert default.start(fallback=True) not in (0, port)
    finally:
        default.stop()
        taken.close()


def sim_now(store: Store) -> float:
    """Simulated Unix time, as a worker gets it: from the anchor the simulator publishes."""
    eventually(lambda: read_sim_anchor(store))
    anchor = read_sim_anchor(store)
    assert anchor is not None
    return SimClock(anchor.anchor).epoch()


def test_the_channels_port_is_announced_last_and_published_in_the_anchor(sim: ChannelSim, store: Store) -> None:
    assert [line.split()[0] for line in sim.lines] == list(LABELS)
    assert "/bot<token>/sendMessage" in sim.lines[4] and "/2/tweets" in sim.lines[4]
    eventually(lambda: read_sim_anchor(store))
    anchor = read_sim_anchor(store)
    assert anchor is not None and anchor.channels_port == sim.port("channels")


def test_one_success_per_channel(sim: ChannelSim, store: Store) -> None:
    sent = sim.telegram("@premium_tier", "<b>BUY</b> SPY 600C", parse_mode="HTML", protect_content=True)
    assert sent.status_code == 200, sent.text
    result = sent.json()["result"]
    assert result["text"] == "BUY SPY 600C" and result["chat"]["id"] == "@premium_tier"
    assert abs(result["date"] - sim_now(store)) < 60  # simulated time: 2026-11-24, not today
    posted = sim.tweet("SPY 600C at 15:40 ET $SPY (signal s-1)")
    assert posted.status_code == 201 and posted.json()["data"]["id"].isdigit()
    assert posted.headers["x-rate-limit-limit"] == "100" and posted.headers["x-rate-limit-remaining"] == "99"
    hook = requests.post(f"{sim.url}/hooks/basic", data=b'{"signal":"s-1"}', headers={"webhook-id": "s-1:basic"},
                         timeout=10)
    assert hook.status_code == 204
    seen = sim.channels()
    assert seen["telegram"]["delivered"]["@premium_tier"] == {"<b>BUY</b> SPY 600C": 1}
    assert seen["webhook"]["delivered"]["basic"] == {"s-1:basic": 1}
    row = next(r for r in seen["telegram"]["received"] if r["target"] == "@premium_tier")
    assert row["protect_content"] is True and row["status"] == 200 and TOKEN not in json.dumps(seen)


def test_the_21st_post_to_a_channel_within_a_simulated_minute_gets_429_retry_after(sim: ChannelSim) -> None:
    chat = "-1009990001"
    statuses = [sim.telegram(chat, f"burst {i}").status_code for i in range(20)]
    assert statuses == [200] * 20
    refused = sim.telegram(chat, "burst 20")
    assert refused.status_code == 429
    body = refused.json()
    retry_after = body["parameters"]["retry_after"]
    assert 1 <= retry_after <= 60
    assert body == {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after}}
    telegram = sim.channels()["telegram"]
    assert sum(telegram["delivered"][chat].values()) == 20 and "burst 20" not in telegram["delivered"][chat]
    assert telegram["limit_violations"]["group_chat"] >= 1
    assert all(n <= 20 for n in telegram["max_admitted_per_window"]["group_chat"].values())


def test_a_too_long_message_is_refused(sim: ChannelSim) -> None:
    refused = sim.telegram("@free_tier", "x" * 4097)
    assert refused.status_code == 400
    assert refused.json() == {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
    assert "@free_tier" not in sim.channels()["telegram"]["delivered"]


def test_x_refuses_a_duplicate(sim: ChannelSim) -> None:
    assert sim.tweet("QQQ put, signal s-2").status_code == 201
    again = sim.tweet("QQQ put, signal s-2")
    assert again.status_code == 403
    assert again.json() == {"detail": "You are not allowed to create a Tweet with duplicate content.",
                            "type": "about:blank", "title": "Forbidden", "status": 403}
    x = sim.channels()["x"]
    assert x["refused_by_reason"]["duplicate"] >= 1
    assert all(texts.get("QQQ put, signal s-2", 0) <= 1 for texts in x["delivered"].values())


def test_a_webhook_with_a_bad_signature_gets_401(sim: ChannelSim, store: Store) -> None:
    reply = sim.ctl("channel-secret", "premium", SECRET)
    assert SECRET not in reply and json.loads(reply)["hooks_with_secret"] == ["premium"]
    body = '{"signal":"s-3"}'
    stamp = int(sim_now(store))  # the sender stamps qc's clock: simulated time under `qc sim`
    good = Webhook(SECRET).sign("s-3:premium", datetime.fromtimestamp(stamp, timezone.utc), body)
    headers = {"webhook-id": "s-3:premium", "webhook-timestamp": str(stamp), "content-type": "application/json"}
    bad = requests.post(f"{sim.url}/hooks/premium", data=body.encode(),
                        headers={**headers, "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"}, timeout=10)
    assert bad.status_code == 401
    ok = requests.post(f"{sim.url}/hooks/premium", data=body.encode(), headers={**headers, "webhook-signature": good},
                       timeout=10)
    assert ok.status_code == 204
    webhook = sim.channels()["webhook"]
    assert webhook["delivered"]["premium"] == {"s-3:premium": 1}
    assert [r["status"] for r in webhook["received"] if r["target"] == "premium"] == [401, 204]


def test_an_injected_timeout_is_delivered_and_recorded(sim: ChannelSim) -> None:
    sim.ctl("channel-timeout", "telegram", "--target", "9001", "--seconds", "3")
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{sim.url}/bot{TOKEN}/sendMessage", json={"chat_id": 9001, "text": "slow signal"},
                      timeout=0.5)
    telegram = sim.channels()["telegram"]
    assert telegram["delivered"]["9001"] == {"slow signal": 1}
    row = next(r for r in telegram["received"] if r["target"] == "9001")
    assert row["timed_out"] and row["delivered"] and row["status"] == 200
    assert telegram["timeouts"] >= 1


def test_ctl_faults_and_the_channels_query(sim: ChannelSim) -> None:
    sim.ctl("channel-fail", "webhook", "2", "--status", "503", "--target", "flaky")
    sim.ctl("chat-not-found", "@nobody")
    codes = [requests.post(f"{sim.url}/hooks/flaky", data=b"{}", headers={"webhook-id": "s-4"}, timeout=10).status_code
             for _ in range(3)]
    assert codes == [503, 503, 204]
    assert sim.telegram("@nobody", "hi").json()["description"] == "Bad Request: chat not found"
    cleared = json.loads(sim.ctl("channels-clear"))
    assert cleared["fault"] == "channels_clear"
    assert sim.telegram("@nobody", "hi").status_code == 200
    seen = sim.channels()
    webhook = seen["webhook"]
    assert webhook["delivered"]["flaky"] == {"s-4": 1}
    assert [r["status"] for r in webhook["received"] if r["target"] == "flaky"] == [503, 503, 204]
    assert webhook["refused_by_reason"]["injected_503"] == 2
    for channel in seen.values():  # exactly once at the simulator: nothing here was delivered twice
        assert channel["requests"] == channel["accepted"] + channel["refused"]
        assert all(n == 1 for per_target in channel["delivered"].values() for n in per_target.values())
        for name, per_scope in channel["max_admitted_per_window"].items():  # no limit exceeded by what got through
            assert all(n <= channel["limits"][name]["count"] for n in per_scope.values())
    table = sim.ctl("channels")
    assert table.splitlines()[0] == "3 channels" and "telegram" in table
    assert '"channels"' in sim.ctl("stats")
