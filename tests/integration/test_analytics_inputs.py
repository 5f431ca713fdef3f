"""The 1-s imbalance task reads every symbol's book and quote in one round trip: exactly what reading them one
by one gives, for a good book, a crossed one, a one-sided one, a missing one and a missing quote."""

from __future__ import annotations

from qc.analytics.cycle import inputs
from qc.core import keys
from qc.core.codec import Absent
from qc.core.models import DepthLevel
from qc.ingest.codec import Quote, book_fields
from qc.runtime.store import Store


def test_books_and_quote_times_read_together_are_what_one_by_one_reads_give(store: Store) -> None:
    books = {
        "SPY": ([DepthLevel(500.02, 300, "ARCA")], [DepthLevel(500.01, 100, "IEX"), DepthLevel(500.0, 50, "BATS")]),
        "QQQ": ([DepthLevel(400.0, 10, "ARCA")], [DepthLevel(400.01, 10, "IEX")]),  # crossed
        "IWM": ([], [DepthLevel(200.0, 10, "IEX")]),  # one-sided
    }
    for sym, (asks, bids) in books.items():
        store.hset(keys.book(sym), book_fields(asks, bids))
    store.hset(keys.quote("SPY"), Quote(1_700_000_000.5, 500.01, 500.02).to_redis())
    symbols = ["SPY", "QQQ", "IWM", "DIA"]  # DIA: nothing at all
    together = inputs.books_and_quote_times(store, symbols)
    assert list(together) == symbols
    for sym in symbols:
        book, quoted = together[sym]
        alone = inputs.read_book(store, sym)
        assert quoted == inputs.quote_as_of(store, sym)
        if isinstance(alone, Absent):
            assert isinstance(book, Absent) and str(book) == str(alone)
        else:
            assert not isinstance(book, Absent)
            assert [list(a) for a in (book.bid_px, book.bid_sz, book.ask_px, book.ask_sz)] == \
                   [list(a) for a in (alone.bid_px, alone.bid_sz, alone.ask_px, alone.ask_sz)]
    assert together["SPY"][1] == 1_700_000_000.5 and together["QQQ"][1] is None
    assert "crossed" in str(together["QQQ"][0]) and "one-sided" in str(together["IWM"][0])
