"""Confirmations over HTTP: many volunteers' phones at once, then a check that nothing was lost.

    python benchmarks/serve.py                                  # SQLite, one server
    python benchmarks/serve.py --db postgresql+psycopg://USER@127.0.0.1:5432/DB --servers 2

A batch of ``--n`` fictional households (default 10,000; see ``fictional.py``)
is registered straight in the ledger (no letters needed), then ``--servers``
waitress servers (``letterpress.server``, each in a process of its own, on
loopback) are started on that ledger and ``--clients`` threads post every
household's outcome to ``POST /api/events`` with its volunteer's badge token,
spread over the servers. A share of the households (``--repeats``, default
20%) have their post sent twice with the same nonce, as a phone does when an
answer is lost; the two may race, on different servers.

Printed: confirmations a second (every post answered, repeats included, and
new events alone), latency p50/p99/max, the CPU each server used (and its
main thread, waitress's I/O loop, alone), and the check afterwards, read from
the ledger itself: every household has exactly one event, with the outcome
and nonce sent, no duplicate flag, and the state expected (delivered, or
failed for the not-home ones); every household got exactly one 201 and its
repeats 200 with the same event id. Exit status 1 when an event was lost or
doubled, a state is wrong, or a post errored (anything but 201/200, or no
answer); 0 otherwise.

With SQLite the ledger is a new file under ``output/``. With a PostgreSQL URL
the run uses a schema of its own in that database (dropped afterwards), so an
existing ledger there is never touched. Only loopback addresses are used; the
run stops by itself (``--timeout`` bounds the posting).
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import queue
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import fictional  # noqa: E402

HOST = "127.0.0.1"
BASE_URL = "http://192.168.1.20:8470"     # printed on slips; the posts go to loopback
TARGET_PER_SECOND = 300


# ---------------------------------------------------------------------------
# The batch

def households(n: int):
    """``n`` fictional households (models.Household) in list order."""
    from letterpress.models import Household, Recipient

    out = []
    for seq, row in enumerate(fictional.rows(n), start=1):
        key, name, honorific, compound, building, unit, room, phone, category, grid, \
            volunteer, notes = row
        r = Recipient(row=seq + 1, id=str(key), name=name, honorific=honorific,
                      address=f"{compound}{building}{unit}{room}", compound=compound,
                      building=building, unit=unit, room=room, phone=phone, category=category,
                      grid=grid, volunteer=volunteer, package="肉制品、蔬菜", notes=notes)
        out.append(Household(seq=seq, recipient=r))
    return out


def planned_outcome(seq: int) -> tuple:
    """(outcome, note, expected state) of household ``seq``: mostly delivered, some not."""
    if seq % 10 == 0:
        return "not-home", "", "failed"
    if seq % 25 == 1:
        return "proxy", "邻居代收", "delivered"
    return "delivered", "", "delivered"


def prepare_db(url: str, tmp: Path):
    """(URL to use, clean-up function): a fresh SQLite file, or a PostgreSQL schema of our own."""
    if url is None:
        return f"sqlite:///{tmp / 'ledger.db'}", lambda: None
    from sqlalchemy import create_engine, text

    from letterpress.ledger.schema import parse_url

    parsed = parse_url(url)
    if parsed.get_backend_name() != "postgresql":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists: give a new file, the benchmark never "
                             "writes into an existing ledger")
        return url, lambda: None
    if parsed.host not in (None, "", "127.0.0.1", "localhost", "::1"):
        raise SystemExit("this benchmark only talks to a database on loopback (127.0.0.1)")
    schema = "lp_bench_" + secrets.token_hex(5)
    admin = create_engine(parsed)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


def register(url: str, n: int) -> tuple:
    """Register the batch; returns (batch id, title, work items by household)."""
    from letterpress.ledger import Ledger
    from letterpress.models import BatchInfo

    title = f"2020-02-24 serve benchmark {secrets.token_hex(3)}"
    with Ledger.open(url, create=True) as led:
        reg = led.register_batch(BatchInfo(title, "某某街道办事处", dt.date(2020, 2, 24)),
                                 households(n), BASE_URL)
        tokens = {v.name: v.token for v in led.volunteers(reg.batch_id)}
    run_id = secrets.token_hex(4)
    items = {}
    for h in reg.households:
        outcome, note, state = planned_outcome(h.seq)
        items[h.seq] = dict(seq=h.seq, code=h.code, token=tokens[h.volunteer], outcome=outcome,
                            note=note, state=state, nonce=f"bench-{run_id}-{h.seq}")
    return reg.batch_id, title, items


# ---------------------------------------------------------------------------
# Servers (child processes)

def server_worker(url: str, threads: str) -> None:
    from letterpress.server import close_app, create_app
    from letterpress.server.run import make_server

    app = create_app(url)
    server = make_server(app, HOST, 0, threads=int(threads))
    print(f"PORT {server.effective_port}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.task_dispatcher.shutdown()
        close_app(app)


class Server:
    def __init__(self, url: str, threads: int, log: Path) -> None:
        self.log = log
        self._err = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--server-worker", url,
             str(threads)], cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err)
        line = self._first_line(60)
        if not line.startswith("PORT "):
            self.stop()
            raise SystemExit(f"the server did not start:\n{self.tail()}")
        self.port = int(line.split()[1])

    def _first_line(self, timeout: float) -> str:
        got: list = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        return got[0].decode().strip() if got else ""

    def cpu_seconds(self, main_thread: bool = False) -> float:
        """User + system CPU time of the server process so far (Linux; 0 elsewhere);
        with ``main_thread``, of its main thread alone (waitress's I/O loop)."""
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/stat" if main_thread \
            else f"/proc/{self.proc.pid}/stat"
        try:
            with open(path, "rb") as fh:
                stat = fh.read()
        except OSError:
            return 0.0
        fields = stat[stat.rindex(b")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, chars: int = 3000) -> str:
        self._err.flush()
        return self.log.read_text("utf-8", "replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self._err.close()


# ---------------------------------------------------------------------------
# Clients (threads)

def client(port: int, work: "queue.Queue", results: list, deadline: float) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        while time.monotonic() < deadline:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            body = {"code": item["code"], "outcome": item["outcome"], "nonce": item["nonce"]}
            if item["note"]:
                body["note"] = item["note"]
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers = {"Authorization": f"Bearer {item['token']}",
                       "Content-Type": "application/json"}
            start = time.perf_counter()
            try:
                conn.request("POST", "/api/events", payload, headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                try:
                    answer = json.loads(raw)
                except ValueError:
                    answer = {"error": "not_json", "message": raw[:200].decode("utf-8", "replace")}
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, {"error": type(exc).__name__, "message": str(exc)}
                conn.close()
            results.append((item["seq"], status, answer, time.perf_counter() - start, port))
    finally:
        conn.close()


def post_all(items: dict, ports: list, clients: int, repeats: float, timeout: float,
             seed: int = 2020) -> tuple:
    rnd = random.Random(seed)
    seqs = sorted(items)
    twice = set(rnd.sample(seqs, int(round(len(seqs) * repeats))))
    order = [items[s] for s in seqs] + [items[s] for s in sorted(twice)]
    rnd.shuffle(order)
    work: "queue.Queue" = queue.Queue()
    for item in order:
        work.put(item)
    results: list = []
    deadline = time.monotonic() + timeout
    threads = [threading.Thread(target=client, args=(ports[i % len(ports)], work, results,
                                                     deadline), daemon=True)
               for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 60)
    seconds = time.perf_counter() - start
    return results, seconds, len(order), twice


# ---------------------------------------------------------------------------
# The check, from the ledger

def check(url: str, batch_id: int, items: dict, results: list, sent: int) -> dict:
    from sqlalchemy import select

    from letterpress.ledger import Ledger
    from letterpress.ledger import schema as S

    problems: dict = defaultdict(list)
    answers = defaultdict(list)
    for seq, status, answer, _, port in results:
        answers[seq].append((status, answer, port))
    if len(results) != sent:
        problems["errored"].append(f"{sent - len(results)} posts were never answered "
                                   "(timeout)")
    errors = Counter()
    for seq, got in answers.items():
        statuses = sorted(s for s, _, _ in got)
        bad = [(s, a) for s, a, _ in got if s not in (200, 201)]
        for s, a in bad:
            errors[(s, a.get("error"))] += 1
        if bad:
            continue
        if statuses.count(201) != 1:
            problems["doubled" if statuses.count(201) > 1 else "errored"].append(
                f"household {seq}: answers {statuses} (expected one 201, the rest 200)")
        ids = {a["event"]["id"] for _, a, _ in got}
        if len(ids) != 1:
            problems["doubled"].append(f"household {seq}: event ids {sorted(ids)} answered")
    for (status, code), count in errors.items():
        problems["errored"].append(f"{count} posts answered {status or 'no answer'} {code}")
    with Ledger.open(url) as led:
        with led.transaction() as conn:
            h, e = S.households, S.events
            rows = conn.execute(select(h.c.seq, e.c.kind, e.c.outcome, e.c.nonce,
                                       e.c.duplicate)
                                .join(e, e.c.household_id == h.c.id, isouter=True)
                                .where(h.c.batch_id == batch_id)).all()
        states = {v.seq: v.state for v in led.household_rows(batch_id)}
        status = led.status(led.batch(batch_id).title)["batches"][0]
    events = defaultdict(list)
    for r in rows:
        if r.kind is not None:
            events[r.seq].append(r)
    for seq, item in items.items():
        evs = events.get(seq, [])
        if not evs:
            problems["lost"].append(f"household {seq}: no event in the ledger")
            continue
        if len(evs) > 1:
            problems["doubled"].append(f"household {seq}: {len(evs)} events in the ledger")
        ev = evs[0]
        if (ev.kind, ev.outcome, ev.nonce, bool(ev.duplicate)) != \
                ("outcome", item["outcome"], item["nonce"], False):
            problems["wrong"].append(f"household {seq}: event {ev.kind} {ev.outcome} "
                                     f"{ev.nonce} duplicate={ev.duplicate}")
        if states.get(seq) != item["state"]:
            problems["wrong"].append(f"household {seq}: state {states.get(seq)}, expected "
                                     f"{item['state']}")
    expected = Counter(item["state"] for item in items.values())
    got = {k: status[k] for k in ("delivered", "failed", "outstanding")}
    if got != {"delivered": expected["delivered"], "failed": expected["failed"],
               "outstanding": 0}:
        problems["wrong"].append(f"status counts {got}, expected {dict(expected)}")
    return {"problems": problems, "events": sum(len(v) for v in events.values()),
            "status": got}


def percentile(sorted_values: list, p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values))) - 1))
    return sorted_values[k]


# ---------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="households (default 10000)")
    parser.add_argument("--db", help="ledger URL (default: a new SQLite file under output/)")
    parser.add_argument("--servers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads of each server, as `letterpress serve` (default 8)")
    parser.add_argument("--clients", type=int, default=32,
                        help="concurrent clients (default 32)")
    parser.add_argument("--repeats", type=float, default=0.2,
                        help="share of households posted twice with the same nonce (0.2)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds the posting may take at most (default 600)")
    parser.add_argument("--server-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_worker:
        server_worker(*args.server_worker)
        return 0
    if not 0 <= args.repeats <= 1 or args.n < 1 or args.servers < 1 or args.clients < 1:
        parser.error("--n, --servers and --clients must be positive and --repeats in [0, 1]")

    (ROOT / "output").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bench-serve-", dir=ROOT / "output"))
    servers: list = []
    cleanup = lambda: None  # noqa: E731
    try:
        url, cleanup = prepare_db(args.db, tmp)
        from letterpress.ledger.schema import describe_url, parse_url
        where = describe_url(parse_url(url))
        start = time.perf_counter()
        batch_id, title, items = register(url, args.n)
        registered = time.perf_counter() - start
        servers = [Server(url, args.threads, tmp / f"server-{i + 1}.log")
                   for i in range(args.servers)]
        ports = [s.port for s in servers]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"POST /api/events, {args.n} households, {args.repeats:.0%} repeated with the "
              f"same nonce; {where}; {args.servers} server process(es) x {args.threads} "
              f"threads on {HOST} port(s) {', '.join(map(str, ports))}; {args.clients} "
              f"client threads ({os.cpu_count()} cores, load average {load:.1f})")
        print(f"  registered the batch in {registered:.1f} s")
        server_cpu = [s.cpu_seconds() for s in servers]
        loop_cpu = [s.cpu_seconds(main_thread=True) for s in servers]
        client_cpu = time.process_time()
        results, seconds, sent, twice = post_all(items, ports, args.clients, args.repeats,
                                                 args.timeout)
        client_cpu = time.process_time() - client_cpu
        server_cpu = [s.cpu_seconds() - before for s, before in zip(servers, server_cpu)]
        loop_cpu = [s.cpu_seconds(main_thread=True) - before
                    for s, before in zip(servers, loop_cpu)]
        answered = [r for r in results if r[1] in (200, 201)]
        latencies = sorted(r[3] * 1000 for r in results)
        new = sum(1 for r in results if r[1] == 201)
        print(f"  {len(results)} of {sent} posts answered in {seconds:.1f} s: "
              f"{len(answered) / seconds:.0f} confirmations/s "
              f"({new / seconds:.0f} new events/s; 201: {new}, "
              f"200: {sum(1 for r in results if r[1] == 200)}, other: "
              f"{len(results) - len(answered)})")
        print(f"  latency: p50 {percentile(latencies, 50):.1f} ms, "
              f"p99 {percentile(latencies, 99):.1f} ms, max {latencies[-1]:.1f} ms")
        per_port = Counter(r[4] for r in results)
        print("  CPU while posting: " + ", ".join(
            f"server {p} {cpu / seconds:.2f} cores ({per_port[p]} posts, "
            f"{cpu * 1000 / max(1, per_port[p]):.1f} ms a post; I/O loop {loop / seconds:.2f} "
            "cores)" for p, cpu, loop in zip(ports, server_cpu, loop_cpu))
            + f"; clients {client_cpu / seconds:.2f} cores")
        verdict = check(url, batch_id, items, results, sent)
        problems = verdict["problems"]
        print(f"  ledger: {verdict['events']} events for {len(items)} households "
              f"({len(twice)} sent twice); status {verdict['status']}")
        for kind in ("lost", "doubled", "wrong", "errored"):
            found = problems.get(kind, [])
            print(f"  {kind:<8} {len(found)}" + (": " + "; ".join(found[:5]) if found else ""))
        if args.db is None or "sqlite" in url:
            met = len(answered) / seconds >= TARGET_PER_SECOND and not problems
            print(f"  target:  at least {TARGET_PER_SECOND} confirmations/s on SQLite with no "
                  f"errors: {'met' if met else 'MISSED'}")
        if problems:
            for s in servers:
                text = s.tail(1500).strip()
                if text:
                    print(f"--- {s.log.name} (end) ---\n{text}")
            return 1
        return 0
    finally:
        for s in servers:
            s.stop()
        try:
            cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
