"""The web app with Flask's test client: logins, the slip page, recording, the API, the dashboard."""
from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from dataclasses import dataclass

import pytest

from letterpress.ledger import Ledger, codes
from letterpress.models import BatchInfo, Household, Recipient
from letterpress.server import close_app, create_app
from letterpress.server.auth import staff_api_token
from letterpress.server.present import (
    bar_widths,
    local_time,
    mask_name,
    masked_place,
    phones,
)
from letterpress.server.ratelimit import FailureLimiter
from letterpress.server.run import BackgroundServer

BASE = "http://192.0.2.10:8470"


def _h(seq, key, name, honorific, compound, building, unit, room, phone, category, volunteer,
       notes=""):
    address = f"{compound}{building}{unit}{room}"
    return Household(seq, Recipient(seq + 1, key, name, honorific, address, compound, building,
                                    unit, room, phone, category, volunteer=volunteer,
                                    package="肉制品、蔬菜", notes=notes))


HOUSEHOLDS = [
    _h(1, "Q01", "王秀英", "奶奶", "沙湖小区", "3栋", "2单元", "401室", "13800001111", "独居老人",
       "李明"),
    _h(2, "Q02", "李强", "爷爷", "电车宿舍", "1栋", "1单元", "101室", "139-0000-2222", "重症老人",
       "王磊"),
    _h(3, "Q03", "张桂兰", "", "九天公寓", "5栋", "", "302室", "027-8765 4321", "空巢老人", "李明"),
    _h(4, "Q04", "Anna Berg", "", "九天公寓", "2栋", "", "208室", "13700004444", "残障家庭",
       "王磊"),
]
OTHER = [_h(1, "X01", "周国华", "", "梨园小区", "7栋", "", "501室", "13600005555", "", "赵敏")]


@dataclass
class World:
    app: object
    url: str
    batch_id: int
    other_batch_id: int
    codes: dict          # household key -> printed code
    tokens: dict         # volunteer name -> badge token
    revoked: str         # a code that was replaced by a reprint

    def ledger(self):
        return self.app.extensions["letterpress"].ledger


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    with Ledger.open(url, create=True) as led:
        reg = led.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队",
                                           dt.date(2020, 2, 24)), HOUSEHOLDS, BASE)
        other = led.register_batch(BatchInfo("2020-03-02 梨园 慰问物资", "", dt.date(2020, 3, 2)),
                                   OTHER, BASE)
        code_of = {h.id: h.code for h in reg.households}
        revoked = code_of["Q03"]
        code_of["Q03"] = led.reissue_codes(reg.batch_id, ["Q03"])["Q03"]
        code_of.update({h.id: h.code for h in other.households})
        tokens = {v.name: v.token for v in reg.volunteers + other.volunteers}
    app = create_app(url, rate_limit=5)
    yield World(app, url, reg.batch_id, other.batch_id, code_of, tokens, revoked)
    close_app(app)


def login(world, name="李明"):
    client = world.app.test_client()
    assert client.get(f"/V/{world.tokens[name]}").status_code == 302
    return client


def form_fields(html):
    return {m.group(1): m.group(2) for m in
            re.finditer(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)}


def post_outcome(client, code, outcome="delivered", note="", fields=None):
    page = client.get(f"/H/{code}").get_data(as_text=True)
    data = dict(fields or form_fields(page), outcome=outcome, note=note)
    return client.post(f"/H/{code}", data=data)


def outcome_events(world, key):
    hv = world.ledger().household_by_code(world.codes[key])
    return [e for e in world.ledger().events_for(hv.id) if e.kind == "outcome"]


# --- presentation helpers ------------------------------------------------------------------------

def test_masking_rules():
    assert mask_name("王秀英") == "王*英"
    assert mask_name("李强") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("Anna Berg") == "A."
    assert mask_name("") == ""
    assert masked_place("沙湖小区", "3栋") == "沙湖小区 3栋"
    assert phones("139-0000-2222 / 027-8765 4321") == [("139-0000-2222", "13900002222"),
                                                        ("027-8765 4321", "02787654321")]
    assert bar_widths(1, 1, 1) == (34, 33, 33)
    assert sum(bar_widths(2, 0, 5)) == 100 and bar_widths(0, 0, 0) == (0, 0, 0)


def test_local_time_shows_date_only_for_other_days():
    now = dt.datetime.now().astimezone()
    assert local_time(now) == now.strftime("%H:%M")
    assert local_time(now - dt.timedelta(days=400)).startswith(str((now - dt.timedelta(days=400)).year))


def test_failure_limiter_window():
    clock = [1000.0]
    lim = FailureLimiter(limit=3, window=60, clock=lambda: clock[0])
    for _ in range(3):
        assert lim.retry_after("a") == 0
        lim.fail("a")
    assert lim.retry_after("a") == 60
    assert lim.retry_after("b") == 0
    clock[0] += 59.5
    assert lim.retry_after("a") == 1
    clock[0] += 1
    assert lim.retry_after("a") == 0


# --- logging in ------------------------------------------------------------------------------

def test_badge_login_sets_cookie_and_shows_home(world):
    client = world.app.test_client()
    r = client.get(f"/V/{world.tokens['李明']}")
    assert r.status_code == 302 and r.headers["Location"] == "/home"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("letterpress=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert world.tokens["李明"] not in r.headers["Location"]
    page = client.get("/home").get_data(as_text=True)
    assert "已登录：李明" in page and "2020-02-24 青鱼嘴 慰问物资" in page
    assert client.get("/").headers["Location"] == "/home"


def test_badge_path_is_case_insensitive_and_cookie_secure_over_https(world):
    client = world.app.test_client()
    r = client.get(f"/v/{world.tokens['王磊']}", base_url="https://letterpress.example")
    assert r.status_code == 302 and "Secure" in r.headers["Set-Cookie"]
    forced = create_app(world.url, secure_cookies=True)
    try:
        r = forced.test_client().get(f"/V/{world.tokens['王磊']}")
        assert "Secure" in r.headers["Set-Cookie"]
    finally:
        close_app(forced)


def test_bad_or_revoked_badge_is_401(world):
    client = world.app.test_client()
    r = client.get("/V/not-a-real-token")
    assert r.status_code == 401 and "登录链接无效" in r.get_data(as_text=True)
    assert "Set-Cookie" not in r.headers
    logged_in = login(world, "王磊")
    world.ledger().revoke_volunteer(world.batch_id, "王磊")
    assert client.get(f"/V/{world.tokens['王磊']}").status_code == 401
    # The phone that was logged in with the revoked badge is a stranger now.
    page = logged_in.get(f"/H/{world.codes['Q02']}").get_data(as_text=True)
    assert "李*" in page and "139" not in page


def test_logout(world):
    client = login(world)
    fields = form_fields(client.get("/home").get_data(as_text=True))
    assert client.post("/logout", data={}).status_code == 400
    assert client.post("/logout", data=fields).status_code == 302
    assert client.get("/home").headers["Location"] == "/"


# --- the slip page -------------------------------------------------------------------------------

def test_anonymous_sees_masked_page_only(world):
    r = world.app.test_client().get(f"/H/{world.codes['Q01']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "王*英" in html and "沙湖小区 3栋" in html
    for secret in ("王秀英", "13800001111", "401", "2单元", "独居老人", "奶奶", "tel:"):
        assert secret not in html, secret
    assert "任务单" in html                       # how to log in
    assert "<form" not in html and "<script" not in html
    assert r.headers["Cache-Control"] == "no-store"
    latin = world.app.test_client().get(f"/H/{world.codes['Q04']}").get_data(as_text=True)
    assert "A." in latin and "Anna" not in latin and "Berg" not in latin


def test_volunteer_sees_full_page_with_tel_link(world):
    client = login(world)
    r = client.get(f"/H/{world.codes['Q01']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert "王秀英" in html and "奶奶" in html and "沙湖小区3栋2单元401室" in html
    assert 'href="tel:13800001111"' in html and "独居老人" in html
    for value in ("delivered", "proxy", "not-home", "refused", "hospital", "other"):
        assert f'name="outcome" value="{value}"' in html
    fields = form_fields(html)
    assert len(fields["csrf"]) >= 20 and len(fields["nonce"]) >= 16
    # Any volunteer of the batch may record any household (volunteers swap streets).
    html = client.get(f"/H/{world.codes['Q02']}").get_data(as_text=True)
    assert 'href="tel:13900002222"' in html
    # A fresh nonce on every page load.
    again = form_fields(client.get(f"/H/{world.codes['Q01']}").get_data(as_text=True))
    assert again["nonce"] != fields["nonce"] and again["csrf"] == fields["csrf"]


def test_code_forms_accepted(world):
    client = login(world)
    printed = world.codes["Q01"]
    for form in (printed, printed.lower(), printed.replace("-", ""),
                 printed.replace("-", "").lower()):
        for prefix in ("/H/", "/h/"):
            r = client.get(prefix + form)
            assert r.status_code == 200 and "王秀英" in r.get_data(as_text=True), form
    r = client.get("/go", query_string={"code": printed.lower().replace("-", " ")})
    assert r.status_code == 302 and r.headers["Location"] == f"/H/{codes.normalise(printed)}"


def test_unknown_malformed_and_revoked_codes_are_404(world):
    client = world.app.test_client()
    data = "0123456789"
    unknown = codes.printed(data + codes.check_symbol(data))
    r = client.get(f"/H/{unknown}")
    assert r.status_code == 404 and "找不到" in r.get_data(as_text=True)
    assert client.get("/H/NOT-A-CODE").status_code == 404
    wrong_check = world.codes["Q01"][:-1] + ("0" if world.codes["Q01"][-1] != "0" else "1")
    assert client.get(f"/H/{wrong_check}").status_code == 404
    r = client.get(f"/H/{world.revoked}")
    assert r.status_code == 404 and "重新打印" in r.get_data(as_text=True)
    # Logged in, the same answers.
    vol = login(world)
    assert vol.get(f"/H/{world.revoked}").status_code == 404
    assert vol.get(f"/H/{unknown}").status_code == 404


def test_volunteer_of_another_batch_gets_masked_page_and_cannot_record(world):
    client = login(world, "赵敏")
    html = client.get(f"/H/{world.codes['Q01']}").get_data(as_text=True)
    assert "王*英" in html and "13800001111" not in html and "另一轮" in html
    own = client.get("/home").get_data(as_text=True)
    fields = form_fields(own)
    r = client.post(f"/H/{world.codes['Q01']}",
                    data=dict(fields, nonce="n-other", outcome="delivered"))
    assert r.status_code == 403 and "13800001111" not in r.get_data(as_text=True)
    assert outcome_events(world, "Q01") == []


# --- recording -----------------------------------------------------------------------------------

def test_post_without_csrf_or_login_is_refused(world):
    client = login(world)
    code = world.codes["Q01"]
    fields = form_fields(client.get(f"/H/{code}").get_data(as_text=True))
    r = client.post(f"/H/{code}", data={"outcome": "delivered", "nonce": fields["nonce"]})
    assert r.status_code == 400
    r = client.post(f"/H/{code}", data=dict(fields, csrf="forged" * 5, outcome="delivered"))
    assert r.status_code == 400
    stranger = world.app.test_client()
    r = stranger.post(f"/H/{code}", data=dict(fields, outcome="delivered"))
    assert r.status_code == 403 and "请先登录" in r.get_data(as_text=True)
    assert outcome_events(world, "Q01") == []


def test_post_with_csrf_records_and_redirects(world):
    client = login(world)
    code = world.codes["Q01"]
    r = post_outcome(client, code.lower().replace("-", ""))
    assert r.status_code == 302 and r.headers["Location"] == f"/H/{codes.normalise(code)}"
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已登记：已送达" in html
    (ev,) = outcome_events(world, "Q01")
    assert ev.outcome == "delivered" and ev.volunteer == "李明" and ev.source == "web"
    assert f"{local_time(ev.at)} 李明 登记：已签收" in html
    assert world.ledger().household_by_code(code).state == "delivered"
    # The banner is shown once.
    assert "已登记：已送达" not in client.get(f"/H/{code}").get_data(as_text=True)


def test_repeated_nonce_records_once(world):
    client = login(world)
    code = world.codes["Q02"]
    fields = form_fields(client.get(f"/H/{code}").get_data(as_text=True))
    first = client.post(f"/H/{code}", data=dict(fields, outcome="not-home"))
    second = client.post(f"/H/{code}", data=dict(fields, outcome="not-home"))
    assert first.status_code == second.status_code == 302
    assert len(outcome_events(world, "Q02")) == 1
    assert "只记一次" in client.get(f"/H/{code}").get_data(as_text=True)
    assert world.ledger().household_by_code(code).state == "failed"


def test_duplicate_delivery_is_kept_and_explained(world):
    li, wang = login(world, "李明"), login(world, "王磊")
    code = world.codes["Q01"]
    post_outcome(li, code)
    html = wang.get(f"/H/{code}").get_data(as_text=True)
    assert "已签收" in html and "李明" in html           # already delivered, shown up front
    r = post_outcome(wang, code)
    html = wang.get(r.headers["Location"]).get_data(as_text=True)
    first, dup = outcome_events(world, "Q01")
    assert f"该户已于 {local_time(first.at)} 由 李明 签收" in html and "待工作人员核查" in html
    assert dup.duplicate and dup.volunteer == "王磊"
    assert "重复，待核查" in html


def test_note_required_for_proxy_and_other(world):
    client = login(world)
    code = world.codes["Q01"]
    r = post_outcome(client, code, "proxy")
    assert r.status_code == 302
    assert "代收人姓名" in client.get(f"/H/{code}").get_data(as_text=True)
    assert outcome_events(world, "Q01") == []
    post_outcome(client, code, "proxy", note="邻居陈阿姨代收")
    (ev,) = outcome_events(world, "Q01")
    assert ev.outcome == "proxy" and ev.note == "邻居陈阿姨代收"
    assert "邻居陈阿姨代收" in client.get(f"/H/{code}").get_data(as_text=True)


# --- guessing is cut short -----------------------------------------------------------------------

def _bad_codes(client, n, **kw):
    return [client.get(f"/H/BAD{i:08d}", **kw).status_code for i in range(n)]


def test_rate_limit_after_failed_attempts(world):
    stranger = world.app.test_client()
    assert _bad_codes(stranger, 5) == [404] * 5
    r = stranger.get(f"/H/{world.codes['Q01']}")          # even a good code: 429 at once
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert stranger.get("/V/guessed-token").status_code == 429
    api = stranger.post("/api/events", json={}, headers={"Authorization": "Bearer guess"})
    assert api.status_code == 429 and api.get_json()["error"] == "too_many_attempts"
    # Another address is not affected.
    other = {"environ_base": {"REMOTE_ADDR": "192.0.2.77"}}
    assert world.app.test_client().get(f"/H/{world.codes['Q01']}", **other).status_code == 200


def test_logged_in_volunteers_are_never_limited(world):
    stranger = world.app.test_client()
    _bad_codes(stranger, 6)
    assert stranger.get(f"/H/{world.codes['Q01']}").status_code == 429
    # Same address (one NAT), but logged in: a valid badge still logs in, and no limit after.
    volunteer = world.app.test_client()
    assert volunteer.get(f"/V/{world.tokens['李明']}").status_code == 302
    assert _bad_codes(volunteer, 12) == [404] * 12
    assert volunteer.get(f"/H/{world.codes['Q01']}").status_code == 200
    token = {"Authorization": f"Bearer {world.tokens['王磊']}"}
    for i in range(8):
        r = stranger.post("/api/events", headers=token,
                          json={"code": f"BAD{i}", "outcome": "delivered", "nonce": f"n{i}"})
        assert r.status_code == 404


def test_forwarded_for_trusted_only_behind_proxy(world):
    direct = world.app.test_client()
    for i in range(6):
        direct.get(f"/H/BAD{i}", headers={"X-Forwarded-For": f"198.51.100.{i}"})
    assert direct.get("/H/BAD9", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429
    proxied = create_app(world.url, behind_proxy=True, rate_limit=5)
    try:
        client = proxied.test_client()
        for i in range(6):
            client.get(f"/H/BAD{i}", headers={"X-Forwarded-For": "198.51.100.1"})
        assert client.get("/H/BAD9", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        assert client.get("/H/BAD9", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 404
        r = client.get(f"/V/{world.tokens['李明']}", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in r.headers["Set-Cookie"]
    finally:
        close_app(proxied)


# --- the JSON API --------------------------------------------------------------------------------

def api(client, token, **body):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/events", json=body, headers=headers)


def test_api_event_status_codes(world):
    client = world.app.test_client()
    li, wang = world.tokens["李明"], world.tokens["王磊"]
    code = world.codes["Q01"]
    r = api(client, li, code=code.lower(), outcome="delivered", nonce="scan-1",
            at="2020-02-24T10:32:00+08:00")
    assert r.status_code == 201
    body = r.get_json()
    assert body["status"] == "created" and body["household"]["state"] == "delivered"
    assert body["event"]["at"].startswith("2020-02-24T02:32:00")
    assert api(client, li, code=code, outcome="delivered", nonce="scan-1").status_code == 200
    reused = api(client, li, code=world.codes["Q02"], outcome="delivered", nonce="scan-1")
    assert (reused.status_code, reused.get_json()["error"]) == (400, "bad_nonce")
    r = api(client, wang, code=code, outcome="delivered", nonce="scan-2")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "already_delivered" and body["event"]["duplicate"] is True
    assert body["household"]["delivered_by"] == "李明" and "message" in body
    assert len(outcome_events(world, "Q01")) == 2

    def err(r):
        return r.status_code, r.get_json()["error"]

    assert err(api(client, li, code="0000000000" + codes.check_symbol("0000000000"),
                   outcome="delivered", nonce="x1")) == (404, "unknown_code")
    assert err(api(client, li, code="nonsense", outcome="delivered", nonce="x2")) == \
        (404, "unknown_code")
    assert err(api(client, li, code=world.revoked, outcome="delivered", nonce="x3")) == \
        (404, "revoked_code")
    assert err(api(client, None, code=code, outcome="delivered", nonce="x4")) == \
        (401, "not_authorised")
    assert err(api(client, "forged-token", code=code, outcome="delivered", nonce="x5")) == \
        (401, "not_authorised")
    assert err(api(client, world.tokens["赵敏"], code=code, outcome="delivered", nonce="x6")) \
        == (403, "not_authorised")
    assert err(api(client, li, code=world.codes["Q02"], outcome="lost", nonce="x7")) == \
        (400, "bad_outcome")
    assert err(api(client, li, code=world.codes["Q02"], outcome="other", nonce="x8")) == \
        (400, "note_required")
    assert err(api(client, li, code=world.codes["Q02"], outcome="delivered")) == \
        (400, "bad_request")
    assert err(api(client, li, code=world.codes["Q02"], outcome="delivered", nonce="x9",
                   at="yesterday")) == (400, "bad_request")
    r = client.post("/api/events", data="{not json", content_type="application/json",
                    headers={"Authorization": f"Bearer {li}"})
    assert err(r) == (400, "bad_request")
    assert outcome_events(world, "Q02") == []


def test_api_withdrawn_household_is_410(world):
    with Ledger.open(world.url) as led:
        led.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资"), HOUSEHOLDS[:3], BASE)
    r = api(world.app.test_client(), world.tokens["李明"], code=world.codes["Q04"],
            outcome="delivered", nonce="w1")
    assert r.status_code == 410 and r.get_json()["error"] == "withdrawn"


def test_api_batch_status_matches_ledger(world):
    client = world.app.test_client()
    li = world.tokens["李明"]
    api(client, li, code=world.codes["Q01"], outcome="delivered", nonce="s1")
    api(client, li, code=world.codes["Q03"], outcome="hospital", nonce="s2")
    url = f"/api/batches/{world.batch_id}/status"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {li}"}).status_code == 401
    token = staff_api_token(world.ledger().secret())
    r = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    expected = world.ledger().status("2020-02-24 青鱼嘴 慰问物资")["batches"][0]
    assert r.get_json() == dict(id=world.batch_id, **expected)
    assert (r.get_json()["delivered"], r.get_json()["failed"], r.get_json()["outstanding"]) == \
        (1, 1, 2)
    missing = client.get("/api/batches/999/status", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404 and missing.get_json()["error"] == "unknown_batch"
    assert client.get("/api/nothing").get_json()["error"] == "not_found"


# --- staff ---------------------------------------------------------------------------------------

def staff_client(world):
    client = world.app.test_client()
    token = world.ledger().new_staff_token()
    r = client.get(f"/S/{token}")
    assert r.status_code == 302 and r.headers["Location"] == "/dashboard"
    return client, token


def test_staff_link_works_once(world):
    assert world.app.test_client().get("/dashboard").status_code == 403
    client, token = staff_client(world)
    assert client.get("/dashboard").status_code == 200
    again = world.app.test_client().get(f"/S/{token}")
    assert again.status_code == 401 and "已用过" in again.get_data(as_text=True)
    # The staff cookie also opens the status API.
    assert client.get(f"/api/batches/{world.batch_id}/status").status_code == 200


def test_dashboard_shows_progress_and_undo_works(world):
    vol = world.app.test_client()
    li = world.tokens["李明"]
    api(vol, li, code=world.codes["Q01"], outcome="delivered", nonce="d1")
    api(vol, world.tokens["王磊"], code=world.codes["Q01"], outcome="delivered", nonce="d2")
    api(vol, li, code=world.codes["Q03"], outcome="not-home", nonce="d3", note="敲门无人")
    client, _ = staff_client(world)
    r = client.get("/dashboard")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert '<meta http-equiv="refresh" content="30">' in html
    assert "共 4 户：已送达 1，未送达 1，待派送 2，已撤出 0" in html
    for text in ("李明", "王磊", "沙湖小区", "电车宿舍", "九天公寓", "张桂兰", "敲门无人",
                 "重复，待核查", "class=\"seg d w"):
        assert text in html, text
    assert "<script" not in html and "style=" not in html
    assert "http-equiv" not in client.get("/dashboard?refresh=0").get_data(as_text=True)
    first, dup = outcome_events(world, "Q01")
    fields = {"event_id": str(first.id), "reason": "扫错了户"}
    assert client.post("/dashboard/undo", data=fields).status_code == 400      # no CSRF
    csrf = form_fields(html)["csrf"]
    r = client.post("/dashboard/undo", data=dict(fields, csrf=csrf, reason=" "))
    assert "撤销须填写原因" in client.get(r.headers["Location"]).get_data(as_text=True)
    r = client.post("/dashboard/undo", data=dict(fields, csrf=csrf))
    assert r.status_code == 302
    assert f"已撤销第 {first.id} 条登记" in client.get("/dashboard").get_data(as_text=True)
    events = world.ledger().events_for(first.household_id)
    assert [e.kind for e in events] == ["outcome", "outcome", "undo"]
    assert events[-1].note == "扫错了户" and events[-1].undoes_event_id == first.id
    # The duplicate now wins: still delivered, by 王磊.
    hv = world.ledger().household_by_code(world.codes["Q01"])
    assert hv.state == "delivered" and hv.last_by == "王磊"
    stranger = world.app.test_client()
    assert stranger.post("/dashboard/undo", data=dict(fields, csrf=csrf)).status_code == 403


# --- robustness and language --------------------------------------------------------------------

def test_no_stack_trace_reaches_the_browser(world, monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("internal detail 42")

    monkeypatch.setattr(world.ledger(), "household_by_code", boom)
    monkeypatch.setattr(world.ledger(), "record", boom)
    r = world.app.test_client().get(f"/H/{world.codes['Q01']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 500 and "出错了" in html
    assert "Traceback" not in html and "internal detail" not in html and "RuntimeError" not in html
    r = api(world.app.test_client(), world.tokens["李明"], code=world.codes["Q01"],
            outcome="delivered", nonce="boom")
    assert r.status_code == 500 and r.get_json()["error"] == "internal_error"
    assert "internal detail" not in r.get_data(as_text=True)
    r = world.app.test_client().get("/no/such/page")
    assert r.status_code == 404 and "页面不存在" in r.get_data(as_text=True)


def test_security_headers(world):
    for path in ("/", f"/H/{world.codes['Q01']}", "/H/BAD", "/static/app.css"):
        r = world.app.test_client().get(path)
        h = r.headers
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer"
        csp = h["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert "no-store" not in world.app.test_client().get("/static/app.css").headers.get(
        "Cache-Control", "")


def test_language_switch(world):
    client = world.app.test_client()
    code = world.codes["Q01"]
    assert "如何登录" in client.get(f"/H/{code}").get_data(as_text=True)       # default zh
    en = client.get(f"/H/{code}", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "How to log in" in en.get_data(as_text=True)
    assert 'lang="en"' in en.get_data(as_text=True)
    r = client.get(f"/H/{code}?lang=en")
    assert "How to log in" in r.get_data(as_text=True) and "lang=en" in r.headers["Set-Cookie"]
    assert "How to log in" in client.get(f"/H/{code}").get_data(as_text=True)   # remembered
    zh = client.get(f"/H/{code}?lang=zh", headers={"Accept-Language": "en"})
    assert "如何登录" in zh.get_data(as_text=True)
    vol = login(world)
    vol.get("/home?lang=en")
    post_outcome(vol, code)
    assert "Recorded: Delivered." in vol.get(f"/H/{code}").get_data(as_text=True)


def test_waitress_answers(world):
    token = staff_api_token(world.ledger().secret())
    with BackgroundServer(world.app) as server:
        req = urllib.request.Request(f"{server.url}/api/batches/{world.batch_id}/status",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and json.load(r)["households"] == 4
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/", timeout=2)


# --- several servers, each backend ---------------------------------------------------------------

from ledger_fixtures import db_url  # noqa: E402,F401  (SQLite, and PostgreSQL when configured)


def test_two_servers_on_one_ledger_agree(db_url):  # noqa: F811
    with Ledger.open(db_url, create=True) as led:
        reg = led.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资"), HOUSEHOLDS, BASE)
    first, second = create_app(db_url), create_app(db_url)
    try:
        code = reg.households[0].code
        token = {v.name: v.token for v in reg.volunteers}["李明"]
        a = first.test_client()
        a.get(f"/V/{token}")
        fields = form_fields(a.get(f"/H/{code}").get_data(as_text=True))
        b = second.test_client()
        b.set_cookie("letterpress", a.get_cookie("letterpress").value)
        assert "13800001111" in b.get(f"/H/{code}").get_data(as_text=True)
        assert b.post(f"/H/{code}", data=dict(fields, outcome="delivered")).status_code == 302
        r = api(b, token, code=reg.households[1].code, outcome="refused", nonce="b-1")
        assert r.status_code == 201
        assert api(a, token, code=reg.households[1].code, outcome="refused",
                   nonce="b-1").status_code == 200
        staff = staff_api_token(first.extensions["letterpress"].ledger.secret())
        r = b.get(f"/api/batches/{reg.batch_id}/status",
                  headers={"Authorization": f"Bearer {staff}"})
        assert (r.get_json()["delivered"], r.get_json()["failed"]) == (1, 1)
    finally:
        close_app(first)
        close_app(second)


def test_missing_ledger_is_refused(tmp_path):
    from letterpress.errors import LedgerError
    with pytest.raises(LedgerError) as info:
        create_app(f"sqlite:///{tmp_path}/typo.db")
    assert info.value.code == "no_ledger" and not (tmp_path / "typo.db").exists()


def test_staff_link_helper(world):
    from letterpress.server import staff_link
    link = staff_link(world.app, "http://127.0.0.1:8470/")
    assert link.startswith("http://127.0.0.1:8470/S/")
    client = world.app.test_client()
    assert client.get(link.split("8470", 1)[1]).headers["Location"] == "/dashboard"


def test_port_in_use_is_a_clear_error(world):
    import socket

    from letterpress.server.run import ServeError, make_server
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServeError) as info:
            make_server(world.app, "127.0.0.1", taken.getsockname()[1])
    assert info.value.code == "port_in_use" and "--port" in info.value.hint


# --- the light path of POST /api/events and the waitress server -------------------------------

def _call(wsgi, token, body=None, *, data=None, content_type="application/json", query="",
          method="POST"):
    """``(status line, sorted headers, body)`` of one request straight to a WSGI callable."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    env = EnvironBuilder(path="/api/events", method=method, headers=headers, query_string=query,
                         data=json.dumps(body) if data is None else data,
                         content_type=content_type).get_environ()
    app_iter, status, got = run_wsgi_app(wsgi, env)
    return status, sorted(got.items()), b"".join(app_iter)


@pytest.fixture
def paths(world, monkeypatch):
    """(the light path, the Flask view under it, the list of posts handed on to the view)."""
    light = world.app.wsgi_app
    view = light.next
    handed_on = []

    def counted(environ, start_response):
        handed_on.append(environ["PATH_INFO"])
        return view(environ, start_response)

    monkeypatch.setattr(light, "next", counted)
    return light, view, handed_on


def test_light_path_answers_exactly_as_the_flask_view(world, paths):
    light, view, handed_on = paths
    li, zhao = world.tokens["李明"], world.tokens["赵敏"]
    post = dict(code=world.codes["Q01"], outcome="delivered", nonce="lp-1")
    status, headers, body = _call(light, li, post)
    assert status == "201 CREATED" and json.loads(body)["status"] == "created"
    assert dict(headers)["Cache-Control"] == "no-store" and dict(headers)["X-Frame-Options"] \
        == "DENY" and dict(headers)["Content-Type"] == "application/json"
    unknown = "0000000000" + codes.check_symbol("0000000000")
    same = [post,                                                              # 200 repeated
            dict(post, code=unknown, nonce="lp-2"),                            # 404
            dict(post, code=world.revoked, nonce="lp-3"),                      # 404 revoked
            dict(post, code=world.codes["Q02"], outcome="lost", nonce="lp-4"),  # 400
            dict(post, code=world.codes["Q02"], outcome="other", nonce="lp-5"),  # 400 note
            dict(post, code=world.codes["Q02"]),                               # 400 bad_nonce
            dict(post, code=world.codes["Q02"], nonce="lp-6", note="门口", outcome="refused",
                 at="2020-02-24T09:00:00+08:00")]                             # 201, then 200
    *answered, fresh = same
    assert fresh["nonce"] == "lp-6"
    for body in answered:
        assert _call(light, li, body) == _call(view, li, body), body
    assert _call(light, li, fresh)[0] == "201 CREATED"                       # then repeated:
    assert _call(light, li, fresh) == _call(view, li, fresh)
    assert _call(light, zhao, post) == _call(view, zhao, post)                 # 403 other batch
    assert _call(light, zhao, post)[0] == "403 FORBIDDEN"
    # 409: the same answer but for the new event's own id and times.
    wang = world.tokens["王磊"]
    (s1, h1, b1), (s2, h2, b2) = (_call(light, wang, dict(post, nonce="lp-8")),
                                  _call(view, wang, dict(post, nonce="lp-9")))
    b1, b2 = json.loads(b1), json.loads(b2)
    assert s1 == s2 == "409 CONFLICT" and b1["error"] == "already_delivered"
    for b in (b1, b2):
        for key in ("id", "at", "recorded_at"):
            b["event"].pop(key)
    assert b1 == b2
    assert [k for k, _ in h1] == [k for k, _ in h2]
    assert handed_on == []          # the light path answered every one itself
    assert len(outcome_events(world, "Q01")) == 3


def test_light_path_hands_on_what_it_does_not_answer(world, paths):
    light, view, handed_on = paths
    li = world.tokens["李明"]
    post = dict(code=world.codes["Q01"], outcome="delivered", nonce="h-1")
    cases = [((li, post), dict(query="lang=en"), "201 CREATED"),
             ((li, post), dict(data="{not json"), "400 BAD REQUEST"),
             ((li, dict(post, nonce="")), {}, "400 BAD REQUEST"),
             ((li, post), dict(content_type="text/plain"), "400 BAD REQUEST"),
             (("forged-token", post), {}, "401 UNAUTHORIZED"),
             ((None, post), {}, "401 UNAUTHORIZED"),
             ((li, post), dict(method="GET"), "405 METHOD NOT ALLOWED")]
    for (token, body), kw, expected in cases:
        assert _call(light, token, body, **kw)[0] == expected, (body, kw)
    assert len(handed_on) == len(cases)
    assert len(outcome_events(world, "Q01")) == 1


def test_light_path_busy_ledger_is_503_like_the_view(world, paths, monkeypatch):
    from letterpress.errors import LedgerError

    light, view, handed_on = paths

    def busy(*a, **kw):
        raise LedgerError("SQLite file x: database is locked", code="ledger_busy")

    monkeypatch.setattr(world.ledger(), "record", busy)
    post = dict(code=world.codes["Q01"], outcome="delivered", nonce="busy-1")
    answer = _call(light, world.tokens["李明"], post)
    assert answer == _call(view, world.tokens["李明"], post)
    assert answer[0] == "503 SERVICE UNAVAILABLE" and ("Retry-After", "5") in answer[1]
    assert handed_on == []


def test_api_revoked_badge_is_refused_and_counted(world):
    client = world.app.test_client()
    old = world.tokens["李明"]
    assert api(client, old, code=world.codes["Q01"], outcome="delivered",
               nonce="rv-0").status_code == 201
    new = world.ledger().revoke_volunteer(world.batch_id, "李明")
    for i in range(5):          # rate_limit=5 failures, then 429 at once
        r = api(client, old, code=world.codes["Q02"], outcome="delivered", nonce=f"rv-{i + 1}")
        assert (r.status_code, r.get_json()["error"]) == (401, "not_authorised")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    r = api(client, old, code=world.codes["Q02"], outcome="delivered", nonce="rv-9")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert api(client, new, code=world.codes["Q02"], outcome="delivered",
               nonce="rv-10").status_code == 201          # a valid badge is never limited
    assert len(outcome_events(world, "Q02")) == 1


def test_api_bad_badge_comes_before_other_errors(world):
    client = world.app.test_client()
    unknown = "0000000000" + codes.check_symbol("0000000000")
    for body in (dict(code=unknown, outcome="delivered", nonce="o1"),
                 dict(code="nonsense", outcome="delivered", nonce="o2"),
                 dict(code=world.codes["Q01"], outcome="lost", nonce="o3"),
                 dict(code=world.codes["Q01"], outcome="delivered"),
                 dict(code=world.codes["Q01"], outcome="delivered", nonce="o4", at="soon")):
        r = api(client, "forged-token", **body)
        assert (r.status_code, r.get_json()["error"]) == (401, "not_authorised"), body


def test_waitress_many_posts_at_once(world):
    import http.client
    import threading

    li = world.tokens["李明"]
    keys = ["Q01", "Q02", "Q03", "Q04"]
    answers, errors = [], []
    with BackgroundServer(world.app, threads=4) as server:
        def phone(i):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                for nonce_round in (0, 1):          # everything sent twice, same nonces
                    for key in keys:
                        body = json.dumps({"code": world.codes[key], "outcome": "delivered",
                                           "nonce": f"t{i}-{key}"})
                        conn.request("POST", "/api/events", body,
                                     {"Authorization": f"Bearer {li}",
                                      "Content-Type": "application/json"})
                        r = conn.getresponse()
                        answers.append((key, nonce_round, r.status, json.loads(r.read())))
                conn.close()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=phone, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors and len(answers) == 64
    for key in keys:
        first = sorted(s for k, n, s, _ in answers if k == key and n == 0)
        assert first == [201] + [409] * 7
        assert [s for k, n, s, _ in answers if k == key and n == 1] == [200] * 8
        assert len(outcome_events(world, key)) == 8


def test_waitress_sends_large_and_streamed_answers(world):
    from flask import Flask

    from letterpress.server.run import channel_class

    big = Flask("big")
    blob = bytes(range(256)) * 16384                 # 4 MB: more than a socket takes at once
    big.add_url_rule("/big", "big", lambda: (blob, 200, {"Content-Type": "application/x-b"}))
    big.add_url_rule("/stream", "stream", lambda: big.response_class(
        (blob[i:i + 65536] for i in range(0, len(blob), 65536)), mimetype="application/x-b"))
    with BackgroundServer(big, threads=2) as server:
        assert server.server.channel_class is channel_class()
        for path in ("/big", "/stream", "/big"):
            with urllib.request.urlopen(server.url + path, timeout=30) as r:
                assert r.read() == blob


def test_waitress_queue_warning_at_most_once_a_minute():
    from letterpress.server.run import ThrottledLog

    said = []

    class Logger:
        name = "waitress.queue"

        def warning(self, msg, *args):
            said.append(msg % args)

    now = [100.0]
    log = ThrottledLog(Logger(), 60, clock=lambda: now[0])
    for depth in range(1, 6):
        log.warning("Task queue depth is %d", depth)
    now[0] += 61
    log.warning("Task queue depth is %d", 9)
    assert said == ["Task queue depth is 1",
                    "Task queue depth is 9 (4 such warnings in the last 60 s)"]
    assert log.name == "waitress.queue"


def test_waitress_main_loop_leaves_a_busy_connection_to_its_task():
    import threading

    from letterpress.server.run import channel_class

    channel = channel_class().__new__(channel_class())    # the state writable() looks at
    channel.total_outbufs_len, channel.will_close, channel.close_when_flushed = 120, False, False
    channel.requests, channel.outbuf_lock = [object()], threading.Condition()
    assert channel.writable()                 # bytes buffered, output lock free: main loop sends
    taken, release = threading.Event(), threading.Event()

    def task():                               # a task thread in the middle of sending
        with channel.outbuf_lock:
            taken.set()
            release.wait(10)

    t = threading.Thread(target=task)
    t.start()
    try:
        assert taken.wait(10)
        assert not channel.writable()         # not polled: no busy loop while the task sends
        channel.requests = []
        assert channel.writable()             # no task running: the main loop sends as before
        channel.requests, channel.close_when_flushed = [object()], True
        assert channel.writable()
    finally:
        release.set()
        t.join(10)
    channel.total_outbufs_len, channel.close_when_flushed = 0, False
    assert not channel.writable()


def test_a_background_server_stops_even_when_its_wake_up_pipe_is_gone(tmp_path):
    """Stopping must not depend on waitress's trigger: with its write end closed under
    it, the server still closes its port and every connection within a poll timeout."""
    import os
    import socket
    import time

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url, create=True).close()
    app = create_app(url)
    try:
        srv = BackgroundServer(app).start()
        with urllib.request.urlopen(srv.url + "/staff/sign-in", timeout=10) as r:
            assert r.status == 200
        held = socket.create_connection(("127.0.0.1", srv.port))
        trigger = srv.server.trigger
        os.close(trigger.trigger)                   # the write end, gone
        trigger._fds = [fd for fd in trigger._fds if fd != trigger.trigger]
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 4
        assert not srv._thread.is_alive()
        held.settimeout(5)
        assert held.recv(1) == b""                  # the connection was closed
        held.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    finally:
        close_app(app)
