"""The round kept on the phone, in real headless Chromium: offline at the door and back.

Chromium treats http://127.0.0.1 as a secure context, so the service worker runs
as it does on https. Offline is DevTools network emulation (through selenium's
CDP bridge). Skips locally when Chromium is missing; fails under
LETTERPRESS_REQUIRE_ALL=1.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import os
import types

import pytest
from conftest import require
from test_browser import CHROMEDRIVER, CHROMIUM, PHONE, _click, _find, _household, _text

from letterpress.ledger import Ledger
from letterpress.models import BatchInfo
from letterpress.server import close_app, create_app
from letterpress.server.run import BackgroundServer

ROUND = [
    _household(1, "Q01", "王秀英", "奶奶", "沙湖小区", "3栋", "401室", "13800001111", "独居老人",
               "李明"),
    _household(2, "Q02", "李强", "爷爷", "电车宿舍", "1栋", "101室", "13900002222", "重症老人",
               "李明"),
    _household(3, "Q03", "张桂兰", "奶奶", "九天公寓", "2栋", "502室", "13700003333", "空巢老人",
               "李明"),
    _household(4, "Q04", "赵德胜", "爷爷", "九天公寓", "5栋", "301室", "13600004444", "困难老人",
               "陈静"),
]


@pytest.fixture
def phone(tmp_path):
    drv = _chromium(tmp_path)
    try:
        yield drv
    finally:
        drv.quit()


#: A name for the loopback server that is not "localhost": plain http, as on a LAN.
LAN_NAME = "lp.test"


def _chromium(tmp_path, javascript: bool = True):
    require(importlib.util.find_spec("selenium") is not None,
            "selenium is not installed (pip install -e '.[test]')")
    binary = _find("chromium", CHROMIUM, "chromium")
    chromedriver = _find("chromedriver", CHROMEDRIVER, "chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-proxy-server",
                 f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 f"--window-size={PHONE[0]},{PHONE[1]}", "--lang=zh-CN"):
        options.add_argument(flag)
    prefs = {"intl.accept_languages": "zh-CN,zh"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    drv.set_page_load_timeout(30)
    return drv


@pytest.fixture
def site(tmp_path, request):
    """A live server on loopback; with the parameter ``lan``, its codes and links name it
    ``http://lp.test:PORT`` (a browser treats that as plain http on a LAN, not as localhost)."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    Ledger.open(url, create=True).close()
    app = create_app(url)
    server = BackgroundServer(app).start()
    try:
        ledger = app.extensions["letterpress"].ledger
        if getattr(request, "param", None) == "lan":
            server = types.SimpleNamespace(url=f"http://{LAN_NAME}:{server.port}",
                                           stop=server.stop)
        reg = ledger.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队",
                                              dt.date(2020, 2, 24)), ROUND, server.url)
        yield server, ledger, reg
    finally:
        server.stop()
        close_app(app)


class DevTools:
    """The browser's own DevTools connection, to reach the service worker's target.

    Selenium's ``execute_cdp_cmd`` speaks to the page only, and a page's network
    emulation does not cover the fetches its service worker makes: the worker is
    a target of its own (as DevTools' "Application > Service workers > Offline").
    """

    def __init__(self, drv) -> None:
        import json
        import urllib.request

        import websocket  # websocket-client, a dependency of selenium

        address = drv.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with urllib.request.urlopen(f"http://{address}/json/version", timeout=10) as r:
            url = json.load(r)["webSocketDebuggerUrl"]
        self.ws = websocket.create_connection(url, timeout=20, suppress_origin=True)
        self.json = json
        self.next_id = 0
        self.sessions: dict = {}

    def send(self, method: str, params=None, session=None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(self.json.dumps(message))
        while True:
            answer = self.json.loads(self.ws.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def workers(self) -> list:
        targets = self.send("Target.getTargets")["targetInfos"]
        return [t["targetId"] for t in targets if t["type"] == "service_worker"]

    def network(self, online: bool) -> None:
        for target in self.workers():
            if target not in self.sessions:
                self.sessions[target] = self.send("Target.attachToTarget", {
                    "targetId": target, "flatten": True})["sessionId"]
            session = self.sessions[target]
            self.send("Network.enable", session=session)
            self.send("Network.emulateNetworkConditions", _conditions(online), session=session)

    def close(self) -> None:
        self.ws.close()


def _conditions(online: bool) -> dict:
    return {"offline": not online, "latency": 0, "downloadThroughput": -1,
            "uploadThroughput": -1}


def _network(drv, online: bool) -> None:
    """DevTools network emulation for the page and its service worker."""
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.emulateNetworkConditions", _conditions(online))
    if not hasattr(drv, "lp_devtools"):
        drv.lp_devtools = DevTools(drv)
    drv.lp_devtools.network(online)


def _wait(drv, test, what: str, timeout: float = 45):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.1).until(test)
    except TimeoutException:
        logs = drv.get_log("browser") if hasattr(drv, "get_log") else []
        state = drv.execute_async_script(
            "var d = arguments[0]; var h = document.documentElement; "
            "(self.LPQueue ? LPQueue.all() : Promise.resolve(null)).then(function (q) {"
            " d([q, h.getAttribute('data-lp-waiting'), h.getAttribute('data-lp-synced'),"
            " navigator.onLine, !!navigator.serviceWorker.controller]); });")
        raise AssertionError(f"waited {timeout} s for {what}; page: {_text(drv)!r}; "
                             f"console: {logs}; state: {state}") from None


def _outcomes(ledger, code):
    hv = ledger.household_by_code(code)
    return [(e.outcome, e.source) for e in ledger.events_for(hv.id) if e.kind == "outcome"]


def test_offline_records_are_sent_once_when_back_online(phone, site):
    from selenium.webdriver.common.by import By

    server, ledger, reg = site
    slips = [h.url for h in reg.households]
    codes = [h.code for h in reg.households]
    phone.get(reg.volunteers[0].url)
    assert phone.current_url == server.url + "/home"
    # The phone keeps the list, the offline page and the volunteer's three slips (not 陈静's).
    _wait(phone, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("data-lp-kept"),
          "the round kept on the phone")
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("data-lp-kept") == "5"

    _network(phone, online=False)
    phone.get(slips[0])                         # scanned at the door, no connection
    page = _text(phone)
    assert "王秀英" in page and "保存在本机" in page
    _click(phone, phone.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    _wait(phone, lambda d: "1 条待发送" in _text(d), "one record waiting")
    assert "本户已在本机登记：已送达（待发送）" in _text(phone)

    phone.get(slips[1])
    phone.find_element(By.ID, "note").send_keys("敲门无人")
    _click(phone, phone.find_element(By.CSS_SELECTOR, "button[value=not-home]"))
    _wait(phone, lambda d: "2 条待发送" in _text(d), "two records waiting")
    assert _outcomes(ledger, codes[0]) == [] and _outcomes(ledger, codes[1]) == []
    # Meanwhile someone else delivers the second household.
    ledger.record(codes[1], "delivered", "陈静", source="cli")

    _network(phone, online=True)
    phone.get(server.url + "/home")              # the next page opened sends the queue
    _wait(phone, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute(
        "data-lp-waiting") == "0" and "已发送" in _text(d), "the queue sent")
    assert "第 2 户已于" in _text(phone) and "由 陈静 签收" in _text(phone)   # the conflict
    assert _outcomes(ledger, codes[0]) == [("delivered", "web")]
    assert _outcomes(ledger, codes[1]) == [("delivered", "cli"), ("not-home", "web")]

    # A third outcome, queued offline, then sent twice: recorded once.
    _network(phone, online=False)
    phone.get(slips[2])
    _click(phone, phone.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    _wait(phone, lambda d: "1 条待发送" in _text(d), "the third record waiting")
    queued = phone.execute_async_script(
        "var done = arguments[0]; LPQueue.all().then(done);")
    assert len(queued) == 1
    _network(phone, online=True)
    answers = phone.execute_async_script("""
        var item = arguments[0], done = arguments[1];
        var body = JSON.stringify({events: [{code: item.code, outcome: item.outcome,
            nonce: item.nonce, note: item.note, at: item.at, via: item.via}]});
        var send = function () {
            return fetch('/home/sync', {method: 'POST', headers: {'Content-Type': 'application/json',
                'X-CSRF-Token': item.csrf}, body: body}).then(function (r) { return r.json(); });
        };
        Promise.all([send(), send()]).then(done);
    """, queued[0])
    statuses = sorted(a["results"][0]["status"] for a in answers)
    assert statuses in (["created", "repeated"], ["repeated", "repeated"])
    phone.get(server.url + "/home")              # and the phone's own resend: nothing new
    _wait(phone, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute(
        "data-lp-waiting") == "0", "the queue sent")
    assert _outcomes(ledger, codes[2]) == [("delivered", "web")]
    assert _outcomes(ledger, codes[3]) == []


def _kept(drv) -> list:
    return drv.execute_async_script("""
        var done = arguments[0];
        caches.keys().then(function (names) {
            return Promise.all(names.filter(function (n) { return n.indexOf('lp-round-') === 0; })
                .map(function (n) { return caches.open(n).then(function (c) { return c.keys(); })
                    .then(function (r) { return r.map(function (x) { return x.url; }); }); }));
        }).then(function (lists) { done([].concat.apply([], lists)); });
    """)


def test_logout_and_a_revoked_badge_drop_the_round_from_the_phone(phone, site):
    from selenium.webdriver.common.by import By

    server, ledger, reg = site
    html = (By.TAG_NAME, "html")
    phone.get(reg.volunteers[0].url)
    _wait(phone, lambda d: d.find_element(*html).get_attribute("data-lp-kept"), "round kept")
    kept = _kept(phone)
    assert len(kept) == 5 and server.url + "/home" in kept
    assert not any(reg.households[3].code.replace("-", "") in url for url in kept)   # 陈静's
    _click(phone, phone.find_element(By.CSS_SELECTOR, "form.logout button"))
    assert phone.current_url == server.url + "/"
    _wait(phone, lambda d: _kept(d) == [], "the round dropped on logout")

    # Log in again, record offline, then the badge is revoked: the sync gets 401.
    phone.get(reg.volunteers[0].url)
    _wait(phone, lambda d: d.find_element(*html).get_attribute("data-lp-kept"), "round kept")
    _network(phone, online=False)
    phone.get(reg.households[0].url)
    _click(phone, phone.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    _wait(phone, lambda d: "1 条待发送" in _text(d), "one record waiting")
    ledger.revoke_volunteer(reg.batch_id, "李明")
    _network(phone, online=True)
    phone.execute_script("window.dispatchEvent(new Event('online'))")
    _wait(phone, lambda d: "登录已失效" in _text(d), "the revoked notice")
    assert _kept(phone) == []
    assert phone.execute_async_script("var d = arguments[0]; LPQueue.count().then(d);") == 0
    assert ledger.household_by_code(reg.households[0].code).state == "outstanding"


def _record_from_the_list(drv, server, ledger, reg):
    """Log in, open the first household from the round list, record a delivery."""
    from selenium.webdriver.common.by import By

    drv.get(reg.volunteers[0].url)
    assert drv.current_url == server.url + "/home"
    assert "待上门（3）" in _text(drv) and "赵德胜" not in _text(drv)
    _click(drv, drv.find_element(By.CSS_SELECTOR, "a.btn.next"))       # "next": No. 1
    assert "从名单登记" in _text(drv) and "王秀英" in _text(drv)
    _click(drv, drv.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    assert drv.current_url == server.url + "/home"
    assert "已登记：已送达。" in _text(drv) and "已送达（1）" in _text(drv)
    assert _outcomes(ledger, reg.households[0].code) == [("delivered", "list")]


def test_without_javascript_the_list_and_forms_work(tmp_path, site):
    server, ledger, reg = site
    drv = _chromium(tmp_path, javascript=False)
    try:
        _record_from_the_list(drv, server, ledger, reg)
    finally:
        drv.quit()


def _worker_registered(drv) -> bool:
    from selenium.common.exceptions import JavascriptException

    try:
        return bool(drv.execute_async_script("""
            var done = arguments[0];
            if (!navigator.serviceWorker) { done(false); return; }
            navigator.serviceWorker.getRegistrations().then(function (r) { done(r.length > 0); });
        """))
    except JavascriptException:
        return False


@pytest.mark.parametrize("site", [pytest.param("lan", id="lan")], indirect=True)
def test_plain_http_on_the_lan_has_no_service_worker_and_still_records(tmp_path, site):
    server, ledger, reg = site
    assert server.url.startswith(f"http://{LAN_NAME}:")
    drv = _chromium(tmp_path)
    try:
        _record_from_the_list(drv, server, ledger, reg)
        assert drv.execute_script("return window.isSecureContext") is False
        assert not _worker_registered(drv)
        assert drv.execute_script("return document.getElementById('lp-phone').hidden") is True
    finally:
        drv.quit()
