"""The in-memory counts of the staff pages agree with the ledger's own, as events arrive."""
from __future__ import annotations

import datetime as dt

from ledger_fixtures import db_url, ledger  # noqa: F401  (fixtures: SQLite and PostgreSQL)

from letterpress.ledger.livetally import Tallies
from letterpress.models import BatchInfo, Household, Recipient

INFO = BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队", dt.date(2020, 2, 24))


def _households(n, volunteers=("李明", "王磊", "")):
    return [Household(i, Recipient(i + 1, f"Q{i:03d}", f"住户{i}", "", f"沙湖小区{i}栋",
                                   ("沙湖小区", "电车宿舍")[i % 2], f"{i}栋",
                                   volunteer=volunteers[i % len(volunteers)]))
            for i in range(1, n + 1)]


def _expected(ledger, batch_id):
    entry = ledger.status(ledger.batch(batch_id).title)["batches"][0]
    return ({k: entry[k] for k in ("households", "delivered", "failed", "outstanding",
                                   "withdrawn")}, entry["volunteers"])


def test_live_counts_follow_records_undos_and_a_new_list(ledger):  # noqa: F811
    reg = ledger.register_batch(INFO, _households(12), "http://192.0.2.10:8470")
    codes = [h.code for h in reg.households]
    tallies = Tallies()
    live = tallies.of(ledger, reg.batch_id)
    assert live.counts() == _expected(ledger, reg.batch_id)[0]

    ledger.record(codes[0], "delivered", "李明")
    ledger.record(codes[1], "not-home", "王磊")
    ledger.record(codes[2], "not-home", "王磊")
    ledger.record(codes[2], "proxy", "王磊", note="邻居代收")
    second = ledger.record(codes[3], "refused", "李明")
    ledger.record(codes[0], "delivered", "王磊")            # a duplicate
    ledger.undo(second.event_id, "wrong household", by="王芳")
    live = tallies.of(ledger, reg.batch_id)
    counts, volunteers = _expected(ledger, reg.batch_id)
    assert live.counts() == counts
    assert counts["delivered"] == 2 and counts["failed"] == 1
    assert live.by_volunteer() == volunteers
    assert [live.households[h][0] for h in live.ids("failed")] == [reg.households[1].seq]

    # A new list withdraws households: the batch changed, the tally loads afresh.
    ledger.register_batch(INFO, _households(9), "http://192.0.2.10:8470")
    live = tallies.of(ledger, reg.batch_id)
    assert live.counts() == _expected(ledger, reg.batch_id)[0]
    assert live.counts()["withdrawn"] == 3
    outstanding = live.ids("outstanding")
    seqs = [live.households[h][0] for h in outstanding]
    assert seqs == sorted(seqs) and len(outstanding) == live.counts()["outstanding"]
    assert live.ids("outstanding", 2, 3) == outstanding[2:5]
