"""Hardening of the server: revoked badges, crowds of idle connections, failed logins,
forwarded headers from strangers, and bodies built to break it.

One test per promise of the README's "Security and privacy" section. The crowd test
holds a bounded number of connections (300) on loopback for a few seconds.
"""
from __future__ import annotations

import csv
import http.client
import json
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from ledger_fixtures import PEOPLE, db_url, make_households, register  # noqa: F401
from pdftools import decoded_pages

from letterpress.cli import main
from letterpress.ledger import Ledger
from letterpress.server import close_app, create_app
from letterpress.server.run import BackgroundServer


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def api(client, token, **body):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/events", json=body, headers=headers)


@pytest.fixture
def served(db_url):  # noqa: F811
    """A registered batch (both databases) and its app: (app, codes by id, tokens by name)."""
    with Ledger.open(db_url, create=True) as led:
        reg = register(led)
    app = create_app(db_url, rate_limit=5)
    yield app, {h.id: h.code for h in reg.households}, {v.name: v.token for v in reg.volunteers}
    close_app(app)


# --- badges ---------------------------------------------------------------------------------------

def test_a_revoked_badge_stops_at_once_and_reissue_makes_a_new_one(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    run("demo", "--out", out, "--db", db, "--base-url", "http://192.0.2.10:8470", "-q")
    with open(out / "manifest.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    name, code = rows[0]["volunteer"], rows[0]["code"]
    with Ledger.open(db) as led:
        batch_id = led.find_batch().id
        token = next(v.token for v in led.volunteers(batch_id) if v.name == name)
    app = create_app(db)
    try:
        phone, script = app.test_client(), app.test_client()
        assert phone.get(f"/V/{token}").status_code == 302
        assert phone.get("/home").status_code == 200
        assert api(script, token, code=code, outcome="not-home", nonce="n1").status_code == 201
        r = run("volunteers", "--db", db)
        assert f"{name}" in r.output and "badge active" in r.output
        r = run("volunteers", "revoke", name, "--db", db)
        assert "stops working now" in r.output
        assert api(script, token, code=code, outcome="delivered", nonce="n2").status_code == 401
        assert phone.get("/home").headers["Location"].endswith("/")       # logged out
        assert name not in phone.get(f"/H/{code}").get_data(as_text=True)
        assert "REVOKED" in run("volunteers", "--db", db).output
        run("demo", "--out", out, "--db", db, "--base-url", "http://192.0.2.10:8470", "-q")
        assert api(script, token, code=code, outcome="delivered", nonce="n3").status_code == 401
        r = run("volunteers", "reissue", name, "--db", db)
        sheet = Path(r.output.split("new badge: ")[1].split()[0])
        (badge_url,) = [u for u in decoded_pages(sheet)[0] if "/V/" in u]
        new = badge_url.rsplit("/V/", 1)[1]
        assert new != token
        assert api(script, token, code=code, outcome="delivered", nonce="n4").status_code == 401
        assert api(script, new, code=code, outcome="delivered", nonce="n5").status_code == 201
    finally:
        close_app(app)


def test_a_volunteer_dropped_and_added_back_never_gets_the_old_badge_back(db_url):  # noqa: F811
    with Ledger.open(db_url, create=True) as led:
        reg = register(led)
        old = {v.name: v.token for v in reg.volunteers}
        register(led, [p for p in PEOPLE if p[2] != "林小舟"])       # dropped from the list
        back = register(led)                                          # and back on it
        new = {v.name: v.token for v in back.volunteers}
        assert new["林小舟"] != old["林小舟"]
        assert new["高山青"] == old["高山青"]                        # the others keep theirs
        with pytest.raises(Exception) as exc:
            led.authenticate(old["林小舟"])
        assert getattr(exc.value, "code", "") == "not_authorised"
        assert led.authenticate(new["林小舟"]) == (reg.batch_id, "林小舟")


# --- the server stays up --------------------------------------------------------------------------

def _half_sent(port: int, n: int):
    """``n`` connections, each holding a request of which only the start was sent."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"co")
        socks.append(s)
    return socks


def test_idle_and_trickling_connections_do_not_lock_phones_out(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, create=True) as led:
        reg = register(led)
    codes = [h.code for h in reg.households if h.volunteer == "林小舟"]
    token = next(v.token for v in reg.volunteers if v.name == "林小舟")
    app = create_app(url)
    held = []
    stop = threading.Event()
    try:
        with BackgroundServer(app, threads=4) as srv:
            held = _half_sent(srv.port, 300)

            def trickle():       # a tenth of them keep sending a byte now and then
                while not stop.wait(0.25):
                    for s in held[:30]:
                        try:
                            s.send(b"d")
                        except OSError:
                            pass
            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            times, statuses = [], []
            for i in range(60):
                started = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                try:
                    body = json.dumps({"code": codes[i % len(codes)], "outcome": "not-home",
                                       "nonce": f"crowd-{i}"})
                    conn.request("POST", "/api/events", body, {
                        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                    statuses.append(conn.getresponse().status)
                except OSError as exc:       # refused or timed out: locked out
                    statuses.append(repr(exc))
                finally:
                    conn.close()
                times.append(time.perf_counter() - started)
                if sum(not isinstance(x, int) for x in statuses) >= 3:
                    break                    # locked out: no need to wait for every timeout
            stop.set()
            t.join(2)
    finally:
        stop.set()
        for s in held:
            s.close()
        close_app(app)
    assert all(s in (200, 201) for s in statuses), statuses
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"\nwith 300 half-sent requests held open: p99 {p99 * 1000:.0f} ms, "
          f"median {times[len(times) // 2] * 1000:.0f} ms")


def test_failed_authentication_opens_no_write_transaction_and_counts_towards_429(served):
    app, codes, tokens = served
    ledger = app.extensions["letterpress"].ledger
    writes = []
    plain = ledger.transaction

    def counting(write=False):
        writes.append(write)
        return plain(write=write)
    ledger.transaction = counting
    stranger = app.test_client()
    code = codes["1"]
    answers = [api(stranger, secrets.token_urlsafe(32), code=code, outcome="delivered",
                   nonce=f"s{i}").status_code for i in range(5)]
    assert answers == [401] * 5
    assert stranger.get(f"/S/{secrets.token_urlsafe(32)}").status_code == 429
    assert api(stranger, secrets.token_urlsafe(32), code=code, outcome="delivered",
               nonce="s9").status_code == 429
    assert not any(writes), "a failed login opened a write transaction"
    # A volunteer at the same address is not held up by the stranger's failures.
    r = api(stranger, tokens["林小舟"], code=code, outcome="delivered", nonce="v1")
    assert r.status_code == 201 and writes.count(True) == 1


def test_forwarded_headers_are_believed_only_from_the_proxy(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, create=True) as led:
        register(led)

    def failures(app, remote, forwarded):
        client = app.test_client()
        out = []
        for fwd in forwarded:
            r = client.get(f"/V/{secrets.token_urlsafe(32)}",
                           environ_base={"REMOTE_ADDR": remote},
                           headers={"X-Forwarded-For": fwd} if fwd else {})
            out.append(r.status_code)
        return out

    spoofed = [f"198.51.100.{i}" for i in range(1, 9)]
    app = create_app(url, behind_proxy=True, rate_limit=5)
    try:
        # A phone on the network cannot pose as many addresses to dodge the limit...
        assert failures(app, "192.0.2.50", spoofed)[5:] == [429] * 3
        # ...while the proxy on this computer tells its clients apart,
        assert failures(app, "127.0.0.1", spoofed) == [401] * 8
        assert failures(app, "127.0.0.1", ["203.0.113.7"] * 7)[5:] == [429] * 2
    finally:
        close_app(app)
    app = create_app(url, behind_proxy=True, rate_limit=5, proxies=["10.0.0.5"])
    try:                         # --proxy 10.0.0.5: loopback is no longer the proxy
        assert failures(app, "127.0.0.1", [f"198.51.100.{i}" for i in range(20, 28)])[5:] == \
            [429] * 3
        assert failures(app, "10.0.0.5", [f"198.51.100.{i}" for i in range(30, 38)]) == \
            [401] * 8
    finally:
        close_app(app)
    r = CliRunner().invoke(main, ["serve", "--db", url, "--behind-proxy", "--proxy", "proxy.lan",
                                  "--port", "1"])
    assert r.exit_code == 1 and "is not an IP address" in r.stderr and "How to fix" in r.stderr
    r = CliRunner().invoke(main, ["serve", "--db", url, "--proxy", "10.0.0.5"])
    assert r.exit_code == 2 and "--behind-proxy" in r.output + r.stderr


def test_bad_bodies_get_400_with_an_error_code_never_500(served):
    app, codes, tokens = served
    client = app.test_client()
    token, code = tokens["林小舟"], codes["1"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = {"code": code, "outcome": "other", "nonce": "b0", "note": "ok"}

    def raw(text: str, **kw):
        r = client.post("/api/events", data=text.encode("utf-8", "surrogatepass"),
                        headers=dict(headers, **kw))
        return r.status_code, (r.get_json(silent=True) or {}).get("error")

    def body(**fields):
        return raw(json.dumps(dict(good, **fields)))

    cases = {
        "NUL in a note": body(note="门口\x00", nonce="b1"),
        "NUL in a nonce": body(nonce="b2\x00"),
        "lone surrogate in a note": raw('{"code": "%s", "outcome": "other", "nonce": "b3", '
                                        '"note": "\\ud800"}' % code),
        "lone surrogate in a nonce": raw('{"code": "%s", "outcome": "other", "nonce": '
                                         '"b4\\udfff", "note": "x"}' % code),
        "deeply nested": raw("[" * 30000 + "]" * 30000),
        "deeply nested object": raw('{"code": ' + '{"a": ' * 9000 + "1" + "}" * 9000 + "}"),
        "code a number": body(code=12345),
        "outcome null": body(outcome=None),
        "nonce a list": body(nonce=["b5"]),
        "note an object": body(note={"a": 1}),
        "at a number": body(at=5),
        "at not a time": body(at="0001-99-99"),
        "not JSON": raw("{code: 1"),
        "a list": raw("[1, 2]"),
        "text of a wrong type": raw('"text"'),
    }
    for what, (status, error) in cases.items():
        assert status == 400 and error, (what, status, error)
    assert cases["NUL in a note"][1] == "bad_text"
    assert cases["lone surrogate in a nonce"][1] == "bad_text"
    status, error = raw(json.dumps(dict(good, note="x" * 100_000)))
    assert status == 413 and error, (status, error)
    assert body(nonce="b-ok")[0] == 201                     # and the server still records
    # The web form too: a NUL in the note is refused with a message, not a 500.
    phone = app.test_client()
    assert phone.get(f"/V/{token}").status_code == 302
    page = phone.get(f"/H/{code}").get_data(as_text=True)
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = phone.post(f"/H/{code}", data={"csrf": csrf, "outcome": "other", "note": "门\x00口",
                                        "nonce": "w1\x00"})
    assert r.status_code == 302
    assert "请求无法处理" in phone.get(f"/H/{code}").get_data(as_text=True)
