"""The volunteer's round on /home, recording from the list, and the phone's sync API."""
from __future__ import annotations

import datetime as dt
import re

from test_server import BASE, _h, form_fields, login, outcome_events, world  # noqa: F401

from letterpress.models import BatchInfo
from letterpress.server import CSP


def _rows(html: str) -> list:
    """``(seq, name)`` of each row of the round list, in page order."""
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(
        r'<span class="seq">(\d+)</span> <strong>([^<]+)</strong>', html)]


def test_home_lists_only_my_households_in_walking_order(world):
    client = login(world)
    world.ledger().record(world.codes["Q01"], "not-home", "李明")
    html = client.get("/home").get_data(as_text=True)
    # 王秀英 failed (visit again) comes after the outstanding 张桂兰; 王磊's are not there.
    assert _rows(html) == [(3, "张桂兰"), (1, "王秀英")]
    assert "李强" not in html and "Anna Berg" not in html and "13900002222" not in html
    assert "沙湖小区3栋2单元401室" in html and 'href="tel:13800001111"' in html
    assert "未送达，需再访 · 不在家" in html
    assert f'href="/H/{world.codes["Q03"].replace("-", "")}?via=list"' in html   # the "next" button
    assert "下一户：第 3 户 张桂兰" in html
    world.ledger().record(world.codes["Q03"], "delivered", "李明")
    html = client.get("/home").get_data(as_text=True)
    assert re.search(r'<details class="round done">\s*<summary>已送达（1）', html)
    assert "下一户：第 1 户 王秀英" in html
    en = client.get("/home?lang=en").get_data(as_text=True)
    assert "To visit (1)" in en and "Delivered (1)" in en and "Next: No. 1 王秀英" in en


def test_door_notes_show_on_the_list(world):
    reg = world.ledger().register_batch(
        BatchInfo("2020-02-25 沙湖 慰问物资", "", dt.date(2020, 2, 25)),
        [_h(1, "S01", "刘玉梅", "奶奶", "沙湖小区", "8栋", "", "202室", "", "独居老人", "何云",
            notes="听力不好请大声敲门")], BASE)
    client = world.app.test_client()
    client.get(f"/V/{reg.volunteers[0].token}")
    html = client.get("/home").get_data(as_text=True)
    assert _rows(html) == [(1, "刘玉梅")]
    assert "上门提示：听力不好请大声敲门" in html and "tel:" not in html   # no phone, no call link
    assert "王秀英" not in html


def test_strangers_and_other_volunteers_do_not_see_the_round(world):
    anon = world.app.test_client()
    assert anon.get("/home").headers["Location"] == "/"
    assert anon.get("/home/round.json").status_code == 401
    r = anon.post("/home/sync", json={"events": []})
    assert r.status_code == 401
    masked = anon.get(f"/H/{world.codes['Q01']}?via=list").get_data(as_text=True)
    assert "王*英" in masked and "王秀英" not in masked and "<form" not in masked


def test_recording_from_the_list_is_kept_with_source_list(world):
    client = login(world)
    code = world.codes["Q01"]
    r = client.get("/go", query_string={"code": code.lower(), "via": "list"})
    assert r.headers["Location"] == f"/H/{code.replace('-', '')}?via=list"
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "从名单登记" in page
    fields = form_fields(page)
    assert fields["via"] == "list"
    r = client.post(f"/H/{code}", data=dict(fields, outcome="delivered"))
    assert r.status_code == 302 and r.headers["Location"] == "/home"     # back to the list
    assert "已登记：已送达。" in client.get("/home").get_data(as_text=True)
    assert [(e.outcome, e.source) for e in outcome_events(world, "Q01")] == [("delivered", "list")]
    # Scanned slips stay "web".
    fields = form_fields(client.get(f"/H/{world.codes['Q03']}").get_data(as_text=True))
    assert fields["via"] == ""
    client.post(f"/H/{world.codes['Q03']}", data=dict(fields, outcome="not-home"))
    assert [e.source for e in outcome_events(world, "Q03")] == ["web"]


def test_round_json_lists_only_my_pages(world):
    client = login(world)
    data = client.get("/home/round.json").get_json()
    slips = sorted(u for u in data["urls"] if u.startswith("/H/"))
    assert slips == sorted("/H/" + world.codes[k].replace("-", "") for k in ("Q01", "Q03"))
    assert "/home" in data["urls"] and "/offline" in data["urls"]
    assert re.fullmatch(r"[0-9a-f]{16}", data["key"])
    assert data["key"] != login(world, "王磊").get("/home/round.json").get_json()["key"]


def _csrf(client) -> str:
    return form_fields(client.get("/home").get_data(as_text=True))["csrf"]


def test_sync_records_each_nonce_once_and_reports_conflicts(world):
    client = login(world)
    token = _csrf(client)
    events = [{"code": world.codes["Q01"], "outcome": "delivered", "nonce": "n-1",
               "at": "2020-02-24T10:30:00+08:00", "via": ""},
              {"code": world.codes["Q03"], "outcome": "not-home", "nonce": "n-2", "note": "",
               "via": "list"}]
    assert client.post("/home/sync", json={"events": events}).status_code == 400   # no CSRF
    r = client.post("/home/sync", json={"events": events}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    assert [x["status"] for x in r.get_json()["results"]] == ["created", "created"]
    again = client.post("/home/sync", json={"events": events}, headers={"X-CSRF-Token": token})
    assert [x["status"] for x in again.get_json()["results"]] == ["repeated", "repeated"]
    first = outcome_events(world, "Q01")
    assert len(first) == 1 and first[0].at.isoformat() == "2020-02-24T02:30:00+00:00"
    assert [e.source for e in outcome_events(world, "Q03")] == ["list"]
    # Someone else delivered first: recorded, flagged, and said in the volunteer's language.
    world.ledger().record(world.codes["Q03"], "delivered", "王磊")
    late = [{"code": world.codes["Q03"], "outcome": "delivered", "nonce": "n-3"}]
    res = client.post("/home/sync?lang=en", json={"events": late},
                      headers={"X-CSRF-Token": token}).get_json()["results"][0]
    assert res["status"] == "already_delivered"
    assert "No. 3 was already delivered" in res["message"] and "by 王磊" in res["message"]
    # Refusals come back per event, and the rest of the batch still counts.
    mixed = [{"code": world.revoked, "outcome": "delivered", "nonce": "n-4"},
             {"code": world.codes["X01"], "outcome": "delivered", "nonce": "n-5"},
             {"code": world.codes["Q01"], "outcome": "proxy", "nonce": "n-6"},
             {"outcome": "delivered", "nonce": "n-7"}]
    res = client.post("/home/sync", json={"events": mixed},
                      headers={"X-CSRF-Token": token}).get_json()["results"]
    assert [r.get("error") for r in res] == ["revoked_code", "not_authorised", "note_required",
                                             "bad_request"]
    assert "was reprinted" in res[0]["message"] and "not in your round" in res[1]["message"]
    assert outcome_events(world, "X01") == []
    too_many = {"events": [late[0]] * 51}
    assert client.post("/home/sync", json=too_many,
                       headers={"X-CSRF-Token": token}).status_code == 400


def test_a_record_queued_under_another_badge_is_not_sent_under_this_one(world):
    client = login(world)
    token = _csrf(client)
    mine = client.get("/home/round.json").get_json()["key"]
    other = login(world, "王磊").get("/home/round.json").get_json()["key"]
    events = [{"code": world.codes["Q01"], "outcome": "delivered", "nonce": "k-1", "key": other},
              {"code": world.codes["Q03"], "outcome": "delivered", "nonce": "k-2", "key": mine}]
    res = client.post("/home/sync", json={"events": events},
                      headers={"X-CSRF-Token": token}).get_json()["results"]
    assert [(r["status"], r.get("error")) for r in res] == [("error", "other_badge"),
                                                          ("created", None)]
    assert "另一位志愿者" in res[0]["message"]
    assert outcome_events(world, "Q01") == []


def test_background_requests_never_set_the_session_cookie(world):
    """An answer to the phone's background work that arrives after a logout must not log
    the phone in again (Flask refreshes the signed session cookie on every answer)."""
    client = login(world)
    token = _csrf(client)
    plain = client.get("/home/round.json")
    assert "letterpress=" in plain.headers.get("Set-Cookie", "")
    for r in (client.get("/home/round.json", headers={"X-Letterpress-Background": "1"}),
              client.get("/home", headers={"X-Letterpress-Background": "1"}),
              client.post("/home/sync", json={"events": []}, headers={
                  "X-CSRF-Token": token, "X-Letterpress-Background": "1"})):
        assert r.status_code == 200
        assert "letterpress=" not in r.headers.get("Set-Cookie", "")


def test_a_revoked_badge_gets_401_on_sync(world):
    client = login(world)
    token = _csrf(client)
    world.ledger().revoke_volunteer(world.batch_id, "李明")
    r = client.post("/home/sync", json={"events": []}, headers={"X-CSRF-Token": token})
    assert r.status_code == 401
    assert client.get("/home/round.json").status_code == 401


def test_scripts_come_from_the_app_only(world):
    assert "script-src 'self'" in CSP and "worker-src 'self'" in CSP
    assert "unsafe-inline" not in CSP and "http" not in CSP
    client = login(world)
    html = client.get("/home").get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert scripts == ["", ""]                                      # no inline script
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/queue.js", "/static/round.js"]
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    assert "importScripts(\"/static/queue.js\")" in sw.get_data(as_text=True)
    assert sw.headers["Content-Security-Policy"] == CSP
    for name in ("round.js", "queue.js", "sw.js"):
        js = client.get(f"/static/{name}").get_data(as_text=True)
        assert "http://" not in js and "https://" not in js and "eval(" not in js
    offline = client.get("/offline").get_data(as_text=True)
    assert "没有网络" in offline


def test_pages_keep_working_without_javascript(world):
    """The round list and its forms are plain links and forms (what a phone without
    JavaScript, or on plain-http LAN serving without a service worker, uses)."""
    client = login(world)
    html = client.get("/home").get_data(as_text=True)
    assert 'id="lp-phone"' in html and re.search(r'id="lp-phone"[^>]*\shidden', html)
    assert '<form class="card" method="get" action="/go">' in html
    assert '<form class="logout" method="post" action="/logout">' in html
