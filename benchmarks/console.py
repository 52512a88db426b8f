"""How fast the staff console's round page and the dashboard answer for a district-sized round.

    .venv/bin/python benchmarks/console.py [--households 100000] [--db URL]

Registers N fictional households in one batch, records outcomes for 60% of them
(10% of those failed, some undone), then times the round page, the JSON round
and the dashboard with Flask's test client (median of 7), after the first view
that loads the batch into the server's memory.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve as serve_bench  # noqa: E402  (benchmarks/serve.py: fictional households)


def seed(ledger, n: int) -> int:
    """Register ``n`` households and write their outcome events directly (fast)."""
    from sqlalchemy import select

    from letterpress.ledger import schema as S
    from letterpress.models import BatchInfo

    info = BatchInfo("2020-02-24 全区 慰问物资", "区志愿服务队", dt.date(2020, 2, 24))
    reg = ledger.register_batch(info, serve_bench.households(n), "http://192.0.2.10:8470")
    now = S.utcnow()
    with ledger.transaction(write=True) as conn:
        rows = conn.execute(select(S.codes.c.code, S.codes.c.household_id)
                            .join(S.households, S.households.c.id == S.codes.c.household_id)
                            .where(S.households.c.batch_id == reg.batch_id)).all()
        events = []
        for i, (code, hid) in enumerate(rows):
            if i % 10 >= 6:
                continue
            outcome = "not-home" if i % 10 == 5 else "delivered"
            events.append({"household_id": hid, "code": code, "kind": "outcome",
                           "outcome": outcome, "volunteer": "李明", "at": now,
                           "recorded_at": now, "nonce": f"bench-{i}", "note": "",
                           "duplicate": False, "source": "web"})
        for start in range(0, len(events), 5000):
            conn.execute(S.events.insert(), events[start:start + 5000])
    return reg.batch_id


def timed(client, path: str, headers=None, runs: int = 7) -> float:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        r = client.get(path, headers=headers)
        took.append(time.perf_counter() - start)
        assert r.status_code == 200, (path, r.status_code)
    return statistics.median(took) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    from letterpress.ledger import Ledger, accounts, rounds
    from letterpress.server import close_app, create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/ledger.db"
        ledger = Ledger.open(url, create=True)
        start = time.perf_counter()
        batch_id = seed(ledger, args.households)
        print(f"seeded {args.households} households in {time.perf_counter() - start:.1f} s")
        rnd = rounds.create(ledger, "2020-02-24 全区 慰问物资 round", {})
        rounds.update(ledger, rnd["id"], batch_id=batch_id, built="2020-02-24T08:00:00+00:00")
        token = accounts.new_api_token(ledger, "bench")
        ledger.close()
        app = create_app(url, rounds_dir=f"{tmp}/rounds")
        try:
            client = app.test_client()
            with client.session_transaction() as s:
                s["st"], s["sn"] = int(time.time()), ""
            auth = {"Authorization": f"Bearer {token}"}
            rid = rnd["id"]
            start = time.perf_counter()
            client.get(f"/staff/rounds/{rid}")
            print(f"first view     {(time.perf_counter() - start) * 1000:7.1f} ms (loads the batch)")
            print(f"round page     {timed(client, f'/staff/rounds/{rid}'):7.1f} ms")
            print(f"round JSON     {timed(client, f'/api/rounds/{rid}', auth):7.1f} ms")
            print(f"rounds list    {timed(client, '/staff'):7.1f} ms")
            print(f"dashboard      {timed(client, '/dashboard'):7.1f} ms")
        finally:
            close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
