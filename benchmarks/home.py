"""A volunteer's round list (``GET /home``) with a district's ledger behind it.

    python benchmarks/home.py                       # SQLite, 100,000 households
    python benchmarks/home.py --db postgresql+psycopg://USER@127.0.0.1:5432/DB

A batch of ``--n`` fictional households (default 100,000, about 50 a
volunteer; see ``fictional.py``) is registered in a new ledger, a share of
them get an outcome, then ``GET /home`` is asked ``--requests`` times through
the app (Flask's test client: no socket, so the figure is the server's own
time), each time by one of ``--volunteers`` logged-in phones.

Printed: the plans of the round's three queries (households through
``ix_households_round``, their codes and events through their
``household_id`` indexes: no table read whole),
the /home time p50/p99/max, and side by side the naive way (every household
of the batch read and filtered by volunteer, as a page built on
``household_rows`` would) with the ratio. Exit status 1 when a page misses a
household of the volunteer, shows another volunteer's, or a plan reads a table
whole. With a PostgreSQL URL the run uses a schema of its own in that
database (dropped afterwards).
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from serve import households, planned_outcome, prepare_db  # noqa: E402

BASE_URL = "https://lp.example.org"


def explain(led, batch_id: int, volunteer: str) -> list:
    """The database's plans for the three queries of a round, as text."""
    from sqlalchemy import text

    from letterpress.ledger import views as V

    prefix = "EXPLAIN QUERY PLAN " if led.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    with led.transaction() as conn:
        first = V.round_select(batch_id, volunteer)
        ids = [r.id for r in conn.execute(first)]
        for stmt in (first, *V.round_statements(ids)):
            sql = str(stmt.compile(dialect=led.engine.dialect,
                                   compile_kwargs={"literal_binds": True}))
            plans.append("\n".join(str(r[-1]) for r in conn.execute(text(prefix + sql))))
    return plans


def full_scans(plan: str) -> list:
    """Tables the plan reads whole (SQLite ``SCAN t``, PostgreSQL ``Seq Scan on t``)."""
    return re.findall(r"(?:^|\s)SCAN (\w+)|Seq Scan on (\w+)", plan)


def add_outcomes(led, reg) -> int:
    """A third of the households already visited: their events written in bulk (the rule
    of record is measured by ``serve.py``; here only the ledger's size matters)."""
    from sqlalchemy import select, text

    from letterpress.ledger import codes as codes_mod
    from letterpress.ledger import schema as S

    now = S.utcnow()
    with led.transaction(write=True) as conn:
        ids = dict(conn.execute(select(S.households.c.household_key, S.households.c.id)
                                .where(S.households.c.batch_id == reg.batch_id)).all())
        rows = []
        for h in reg.households:
            if h.seq % 3 == 0:
                outcome, note, _ = planned_outcome(h.seq)
                rows.append(dict(household_id=ids[h.recipient.id],
                                 code=codes_mod.normalise(h.code), kind="outcome",
                                 outcome=outcome, volunteer=h.volunteer, at=now, recorded_at=now,
                                 nonce=None, note=note, undoes_event_id=None, duplicate=False,
                                 source="web"))
        for start in range(0, len(rows), 5000):
            conn.execute(S.events.insert(), rows[start:start + 5000])
    with led.transaction(write=True) as conn:
        conn.execute(text("ANALYZE"))    # as the database's own maintenance would, in time
    return len(rows)


def percentile(values, p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--db", default=None, help="a PostgreSQL URL (default: a new SQLite file)")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--volunteers", type=int, default=30)
    ap.add_argument("--naive", type=int, default=3, help="runs of the naive way")
    args = ap.parse_args(argv)

    from letterpress.ledger import Ledger
    from letterpress.models import BatchInfo
    from letterpress.server import close_app, create_app

    with tempfile.TemporaryDirectory(prefix="lp-home-") as tmp:
        url, drop = prepare_db(args.db, Path(tmp))
        try:
            t0 = time.perf_counter()
            with Ledger.open(url, create=True) as led:
                reg = led.register_batch(BatchInfo(f"2020-02-24 home benchmark "
                                                   f"{secrets.token_hex(3)}", "某某街道办事处",
                                                   dt.date(2020, 2, 24)),
                                         households(args.n), BASE_URL)
                t_reg = time.perf_counter() - t0
                t0 = time.perf_counter()
                recorded = add_outcomes(led, reg)
                t_rec = time.perf_counter() - t0
                vols = led.volunteers(reg.batch_id)
                plans = explain(led, reg.batch_id, vols[0].name)
            print(f"ledger: {args.n:,} households, {len(vols):,} volunteers, {recorded:,} "
                  f"outcomes ({'PostgreSQL' if args.db else 'SQLite'}; registered in "
                  f"{t_reg:.1f} s, outcomes in {t_rec:.1f} s)")
            for what, plan in zip(("households", "codes", "events"), plans):
                print(f"plan of the round's {what}:\n  " + plan.replace("\n", "\n  "))
            uses_index = "ix_households_round" in plans[0] and not any(
                full_scans(p) for p in plans)

            expected = {}
            for h in reg.households:
                expected.setdefault(h.volunteer, set()).add(h.recipient.name + "|" + str(h.seq))
            app = create_app(url)
            led = app.extensions["letterpress"].ledger
            try:
                step = max(1, len(vols) // args.volunteers)
                phones = []
                for v in vols[::step][:args.volunteers]:
                    client = app.test_client()
                    assert client.get(f"/V/{v.token}").status_code == 302
                    phones.append((v.name, client))
                wrong = 0
                for name, client in phones:       # check each page once, then time
                    html = client.get("/home").get_data(as_text=True)
                    shown = {f"{n}|{s}" for s, n in re.findall(
                        r'<span class="seq">(\d+)</span> <strong>([^<]+)</strong>', html)}
                    if shown != expected[name]:
                        wrong += 1
                times, cpu = [], []
                for i in range(args.requests):
                    _, client = phones[i % len(phones)]
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = client.get("/home")
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    assert r.status_code == 200
                naive = []
                for i in range(args.naive):
                    name = phones[i % len(phones)][0]
                    t0 = time.perf_counter()
                    rows = [h for h in led.household_rows(reg.batch_id) if h.volunteer == name]
                    naive.append(time.perf_counter() - t0)
                    assert rows
            finally:
                close_app(app)
        finally:
            drop()

    per_round = args.n / len(vols)
    p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
    print(f"GET /home ({args.requests} requests by {len(phones)} volunteers, about "
          f"{per_round:.0f} households each): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms; CPU time of this process (the database's own "
          f"work not included) p50 {percentile(cpu, 50) * 1000:.1f} ms, "
          f"p99 {percentile(cpu, 99) * 1000:.1f} ms")
    slow = sum(t > 0.1 for t in times)
    print(f"requests over 100 ms: {slow} of {len(times)} ({100 * slow / len(times):.1f} %)")
    naive_ms = statistics.median(naive) * 1000
    print(f"naive way (read the whole batch, filter by volunteer; no page rendered): "
          f"median {naive_ms:.0f} ms = {naive_ms / p50:.0f}x the /home page")
    ok = uses_index and wrong == 0
    print(f"check: round queries use indexes (ix_households_round, no full scan): "
          f"{'yes' if uses_index else 'NO'}; "
          f"pages with a wrong list: {wrong}" + ("" if ok else "  FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
