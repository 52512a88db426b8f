"""The command line on a PostgreSQL ledger, and two servers on one database.

The commands run as a user types them, ``--db postgresql+psycopg://...`` (or
``LETTERPRESS_DB``), against the database named by ``LETTERPRESS_TEST_PG``;
without it these tests skip, and under ``LETTERPRESS_REQUIRE_ALL=1`` they fail.
That database is shared by the tests, so each test works on a batch with a
title of its own and removes the batch's rows afterwards.

The two-server test runs on SQLite and on PostgreSQL: two apps made by
``create_app`` on one ledger, each served by waitress on loopback, receive
deliveries of one household at the same moment; exactly one is the delivery,
the others are kept as flagged duplicates, and a nonce sent to both is one event.
"""
from __future__ import annotations

import csv
import http.client
import json
import os
import secrets
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require
from ledger_fixtures import PG_ENV, db_url, make_households  # noqa: F401  (db_url: fixture)
from sqlalchemy import and_, create_engine, delete, select

from letterpress.cli import main
from letterpress.ledger import Ledger
from letterpress.ledger import schema as S
from letterpress.ledger.operations import parse_time
from letterpress.models import BatchInfo
from letterpress.server import close_app, create_app
from letterpress.server.run import BackgroundServer

BASE_URL = "http://192.0.2.10:8470"
HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "志愿者", "备注"]
VOLUNTEERS = ("林小舟", "高山青")


def run(*args, ok=True, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def manifest(path: Path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def recipients(path: Path, n: int = 6) -> Path:
    """A GBK CSV of ``n`` fictional households, as Excel saves it."""
    rows = [HEADER] + [[i, f"示例{i}号", "奶奶", "示例小区", f"{i}栋", "1单元", f"{i}01",
                        f"1380000{i:04d}", "独居老人" if i % 2 else "空巢老人",
                        VOLUNTEERS[i % 2], ""] for i in range(1, n + 1)]
    with open(path, "w", encoding="gbk", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def delete_batch(url: str, title: str) -> None:
    """Remove every row of the batch called ``title`` (test clean-up only)."""
    engine = create_engine(S.parse_url(url))
    try:
        with engine.begin() as conn:
            batch_id = conn.execute(select(S.batches.c.id)
                                    .where(S.batches.c.title == title)).scalar()
            if batch_id is None:
                return
            ids = select(S.households.c.id).where(S.households.c.batch_id == batch_id)
            conn.execute(delete(S.events).where(and_(S.events.c.household_id.in_(ids),
                                                     S.events.c.undoes_event_id.is_not(None))))
            conn.execute(delete(S.events).where(S.events.c.household_id.in_(ids)))
            conn.execute(delete(S.codes).where(S.codes.c.household_id.in_(ids)))
            conn.execute(delete(S.households).where(S.households.c.batch_id == batch_id))
            conn.execute(delete(S.volunteers).where(S.volunteers.c.batch_id == batch_id))
            conn.execute(delete(S.meta).where(S.meta.c.key == f"batch:{batch_id}:build"))
            conn.execute(delete(S.written_files).where(S.written_files.c.batch_id == batch_id))
            conn.execute(delete(S.batches).where(S.batches.c.id == batch_id))
    finally:
        engine.dispose()


@pytest.fixture
def pg() -> str:
    url = os.environ.get(PG_ENV)
    require(bool(url), f"PostgreSQL: set {PG_ENV} to a SQLAlchemy URL of a test database")
    return url


@pytest.fixture
def title(pg):
    """A batch title no other test uses; the batch is removed afterwards."""
    name = f"2020-02-24 示例社区 慰问物资 {secrets.token_hex(4)}"
    yield name
    delete_batch(pg, name)


@pytest.fixture
def built(pg, title, tmp_path):
    """A batch of 6 households built with `letterpress build --db postgresql+psycopg://...`."""
    out = tmp_path / "out"
    r = run("build", "-r", recipients(tmp_path / "list.csv"), "-t", "zh", "--batch", title,
            "--date", "2020-02-24", "--org", "示例社区志愿服务队", "--base-url", BASE_URL,
            "--db", pg, "-o", out, "-q")
    assert "6 households, 2 volunteers, 6 letters" in r.output
    assert "Ledger: PostgreSQL database" in r.stderr
    return out


def status_of(pg: str, title: str) -> dict:
    r = run("status", "--batch", title, "--json", "--db", pg)
    assert r.stdout.lstrip().startswith("{")             # standard output holds only the JSON
    assert "PostgreSQL database" in r.stderr
    data = json.loads(r.stdout)
    assert [b["title"] for b in data["batches"]] == [title]
    return data["batches"][0]


# --- build and status ----------------------------------------------------------------------

def test_build_registers_the_batch_in_postgresql(pg, title, built):
    rows = manifest(built / "manifest.csv")
    assert len(rows) == 6 and all(r["code"] and r["url"] for r in rows)
    assert all(r["url"] == f"{BASE_URL.upper()}/H/{r['code'].replace('-', '')}" for r in rows)
    assert (built / "slips.pdf").stat().st_size > 0
    assert len(list((built / "runsheets").iterdir())) == 2
    with Ledger.open(pg) as led:
        assert led.describe().startswith("PostgreSQL database")
        batch = led.find_batch(title)
        views = list(led.household_rows(batch.id))
    assert sorted(v.code for v in views) == sorted(r["code"] for r in rows)
    status = status_of(pg, title)
    assert (status["households"], status["outstanding"], status["delivered"]) == (6, 6, 0)
    assert sorted(v["name"] for v in status["volunteers"]) == sorted(VOLUNTEERS)


def test_rebuild_keeps_codes_and_ledger_db_from_the_environment(pg, title, built, tmp_path):
    before = {r["id"]: r["code"] for r in manifest(built / "manifest.csv")}
    r = run("build", "-r", recipients(tmp_path / "again.csv", n=7), "-t", "zh", "--batch", title,
            "--date", "2020-02-24", "--base-url", BASE_URL, "-o", built, "-q",
            env={"LETTERPRESS_DB": pg})
    assert "1 new, 6 kept, 0 withdrawn" in r.output
    after = {r["id"]: r["code"] for r in manifest(built / "manifest.csv")}
    assert {k: after[k] for k in before} == before and len(after) == 7
    r = run("status", "--batch", title, "--json", env={"LETTERPRESS_DB": pg})
    assert json.loads(r.stdout)["batches"][0]["households"] == 7
    # Without --batch, status lists every batch of the shared database, ours among them.
    listed = json.loads(run("status", "--json", "--db", pg).stdout)["batches"]
    assert title in [b["title"] for b in listed]


# --- confirm, confirm --from, report, reprint ------------------------------------------------

def test_confirm_by_hand_and_from_a_scanner_export(pg, title, built, tmp_path):
    rows = manifest(built / "manifest.csv")
    r = run("confirm", rows[0]["code"], "--by", rows[0]["volunteer"], "--at", "2020-02-24 10:32",
            "--db", pg)
    assert "1 new, 0 repeated, 0 duplicate, 0 rejected" in r.output
    assert "PostgreSQL database" in r.stderr
    r = run("confirm", rows[0]["code"], "--by", rows[0]["volunteer"], "--at", "2020-02-24 10:32",
            "--db", pg)                                       # the same paper slip again
    assert "0 new, 1 repeated" in r.output
    r = run("confirm", rows[0]["code"], "--by", "高山青", "--db", pg)   # another delivery
    assert "0 new, 0 repeated, 1 duplicate" in r.output
    r = run("confirm", rows[1]["code"], "--outcome", "not-home", "--by", "林小舟", "--db", pg)
    assert "1 new" in r.output
    typo = rows[2]["code"][:-1] + ("0" if rows[2]["code"][-1] != "0" else "1")
    scans = tmp_path / "scans.csv"
    scans.write_text("url,time\n"
                     f"{rows[2]['url'].lower()},2020-02-24 11:05\n"
                     f"{rows[3]['code']},2020-02-24 11:20\n"
                     f"{rows[2]['url']},2020-02-24 11:06\n"
                     f"{typo},2020-02-24 11:30\n", encoding="utf-8")
    r = run("confirm", "--from", scans, "--db", pg, ok=False)
    assert r.exit_code == 1
    assert "2 new, 1 repeated, 0 duplicate, 1 rejected" in r.output
    r = run("confirm", "--from", scans, "--db", pg, ok=False)    # imported twice: nothing new
    assert "0 new, 3 repeated, 0 duplicate, 1 rejected" in r.output
    status = status_of(pg, title)
    assert (status["delivered"], status["failed"], status["outstanding"]) == (3, 1, 2)
    with Ledger.open(pg) as led:
        hv = led.household_by_code(rows[0]["code"])
        events = led.events_for(hv.id)
    assert [(e.outcome, e.duplicate) for e in events] == [("delivered", False),
                                                          ("delivered", True)]
    assert events[0].at == parse_time("2020-02-24 10:32")      # this machine's local time


def test_report_and_reprint(pg, title, built, tmp_path):
    rows = manifest(built / "manifest.csv")
    run("confirm", rows[0]["code"], "--by", rows[0]["volunteer"], "--db", pg)
    run("confirm", rows[1]["code"], "--outcome", "refused", "--by", "林小舟", "--db", pg)
    report = tmp_path / "report.csv"
    r = run("report", "--batch", title, "--db", pg, "-o", report)
    assert "Report: 6 households" in r.output and "PostgreSQL database" in r.stderr
    lines = manifest(report)
    assert [line["状态"] for line in lines[:3]] == ["已送达", "未送达", "待送达"]
    assert lines[1]["最后结果"] == "拒收" and lines[0]["姓名"] == rows[0]["name"]
    run("report", "--batch", title, "--db", pg, "-o", tmp_path / "report.xlsx")
    assert (tmp_path / "report.xlsx").stat().st_size > 0
    r = run("reprint", "--batch", title, "--outstanding", "--db", pg, "-q")
    assert f"Reprinted 5 households of \"{title}\"" in r.output
    new_rows = manifest(built / "manifest.csv")
    assert new_rows[0]["code"] == rows[0]["code"]                     # delivered: kept
    assert all(n["code"] != o["code"] for n, o in zip(new_rows[1:], rows[1:]))
    assert (next(built.glob("reprint-*")) / "slips.pdf").is_file()
    r = run("confirm", rows[2]["code"], "--by", "林小舟", "--db", pg, ok=False)
    assert "rejected" in r.output and "replaced" in r.output
    r = run("confirm", new_rows[2]["code"], "--by", "林小舟", "--db", pg)
    assert "1 new" in r.output
    status = status_of(pg, title)
    assert (status["delivered"], status["failed"], status["outstanding"]) == (2, 1, 3)
    r = run("reprint", "--batch", title, "--household", "no-such-id", "--db", pg, ok=False)
    assert r.exit_code != 0 and "no-such-id" in r.stderr


def test_commands_name_the_database_and_never_its_password(pg, title, built):
    url = S.parse_url(pg)
    secret = url.password or "hunter2secret"   # a trust login ignores a password it never asks
    shown = url.set(password=secret).render_as_string(hide_password=False)
    for args in (["status", "--batch", title], ["confirm", "--by", "x", "0"]):
        r = run(*args, "--db", shown, ok=False)
        assert "PostgreSQL database" in r.stderr
        assert secret not in r.output + r.stderr


# --- two servers on one ledger ---------------------------------------------------------------

def post(port: int, token: str, body: dict) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/events", json.dumps(body).encode("utf-8"),
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def race(count: int, ports, job) -> list:
    """Run ``job(i, port)`` in ``count`` threads released together, alternating servers."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def one(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = job(i, ports[i % len(ports)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_two_servers_on_one_ledger_deliver_a_household_once(db_url):  # noqa: F811
    people = [(str(i), f"示例{i}号", VOLUNTEERS[i % 2]) for i in range(1, 5)]
    with Ledger.open(db_url, create=True) as led:
        reg = led.register_batch(BatchInfo("2020-02-24 示例社区 双服务器"),
                                 make_households(people), BASE_URL)
    tokens = [v.token for v in reg.volunteers]
    first, second = create_app(db_url), create_app(db_url)
    try:
        with BackgroundServer(first) as a, BackgroundServer(second) as b:
            ports = [a.port, b.port]
            code = reg.households[0].code
            # 12 phones deliver the same household at once, half to each server.
            answers = race(12, ports, lambda i, port: post(port, tokens[i % 2], {
                "code": code, "outcome": "delivered", "nonce": f"race-{i}"}))
            statuses = sorted(status for status, _ in answers)
            assert statuses == [201] + [409] * 11
            assert all(body["household"]["state"] == "delivered" for _, body in answers)
            winner = next(body["event"]["id"] for status, body in answers if status == 201)
            # One phone resends one post to both servers at once: one event.
            other = reg.households[1].code
            again = race(8, ports, lambda i, port: post(port, tokens[0], {
                "code": other, "outcome": "not-home", "nonce": "resent-once"}))
            assert sorted(status for status, _ in again) == [200] * 7 + [201]
            assert len({body["event"]["id"] for _, body in again}) == 1
    finally:
        close_app(first)
        close_app(second)
    with Ledger.open(db_url) as led:
        events = led.events_for(led.household_by_code(code).id)
        assert len(events) == 12
        assert [e.id for e in events if not e.duplicate] == [winner]
        assert led.household_by_code(code).state == "delivered"
        once = led.events_for(led.household_by_code(other).id)
        assert [(e.outcome, e.nonce) for e in once] == [("not-home", "resent-once")]
        status = led.status("2020-02-24 示例社区 双服务器")["batches"][0]
        assert (status["delivered"], status["failed"], status["outstanding"]) == (1, 1, 2)
