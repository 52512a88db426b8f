"""A whole round from the staff console in real headless Chromium.

Sign in, upload the demo list with one bad row, see the problem with its row,
upload the fixed list, build with PDFs, download slips.pdf and decode a QR from
it, open that slip as a volunteer and record a delivery, see it on the dashboard.
Screenshots of the check page and the round page (1280 and 390 wide) go to
``docs/`` when ``LETTERPRESS_SCREENSHOTS=1`` (else to the test's folder).
"""
from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import assert_screenshot, require_program
from consoletools import BAD_ROW, write_demo
from test_browser import _click, _decode_pdf_qrs, _text, driver  # noqa: F401  (fixture)

from letterpress.ledger import accounts
from letterpress.server import close_app, create_app
from letterpress.server.run import BackgroundServer

TITLE = "2020-02-24 青鱼嘴社区 慰问物资"
PASSWORD = "long-enough-1"
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def console(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    app = create_app(url, create=True, rounds_dir=str(tmp_path / "rounds"))
    accounts.add_staff(app.extensions["letterpress"].ledger, "王芳", PASSWORD)
    server = BackgroundServer(app).start()
    try:
        yield server, app
    finally:
        server.stop()
        close_app(app)


def _shot(drv, name: str, width: int, folder: Path) -> Path:
    """A whole-page screenshot ``width`` pixels wide."""
    drv.set_window_size(width, 900)
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(width, min(max(int(height) + 120, 600), 5000))
    end = time.time() + 20
    while time.time() < end and not drv.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"):
        time.sleep(0.2)
    time.sleep(0.3)
    path = folder / f"{name}-{width}.png"
    drv.save_screenshot(str(path))
    assert_screenshot(path, drv)
    return path


def _fill(drv, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = drv.find_element(By.CSS_SELECTOR, css)
    box.clear()
    box.send_keys(text)


def _wait_for(drv, url: str, words: str, timeout: float = 600) -> str:
    end = time.time() + timeout
    while time.time() < end:
        drv.get(url)
        page = _text(drv)
        if words in page:
            return page
        assert "生成失败" not in page, page
        time.sleep(1)
    raise AssertionError(f"{words!r} did not appear on {url}")


def test_whole_round_from_the_browser(driver, console, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    require_program("soffice", "libreoffice-writer")
    server, app = console
    shots = DOCS if os.environ.get("LETTERPRESS_SCREENSHOTS") == "1" else tmp_path
    driver.delete_all_cookies()
    driver.set_window_size(1280, 900)

    # Sign in.
    driver.get(server.url + "/staff")
    assert "/staff/sign-in" in driver.current_url
    _fill(driver, "#name", "王芳")
    _fill(driver, "#password", PASSWORD)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert driver.current_url == server.url + "/staff"

    # New round with the demo list that has one bad row.
    driver.get(server.url + "/staff/new")
    _fill(driver, "#title", TITLE)
    _fill(driver, "#org", "青鱼嘴社区志愿服务队")
    _fill(driver, "#package", "肉制品、蔬菜食品套餐")
    _fill(driver, "#base_url", server.url)
    driver.execute_script("document.getElementById('date').value = '2020-02-24'")
    bad = write_demo(tmp_path / "名单-有错.xlsx", bad=True)
    driver.find_element(By.CSS_SELECTOR, "#recipients").send_keys(str(bad))
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]"))
    assert driver.current_url.endswith("/check")
    page = _text(driver)
    assert "有错误，不能生成" in page
    row = driver.find_element(By.CSS_SELECTOR, "table.problems tr.error")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == str(BAD_ROW) and cells[2] == "姓名" and "姓名为空" in cells[3]   # zh page
    check_url = driver.current_url
    # Wait for the picture of the letter (LibreOffice), then photograph the check page.
    end = time.time() + 300
    while not driver.find_elements(By.CSS_SELECTOR, "img[alt='第一封信']") and time.time() < end:
        time.sleep(1)
        driver.get(check_url)
    assert driver.find_elements(By.CSS_SELECTOR, "img[alt='第一封信']")
    assert driver.find_elements(By.CSS_SELECTOR, "img[alt='取件单第一页']")
    for width in (1280, 390):
        _shot(driver, "console-check", width, shots)
    driver.set_window_size(1280, 900)
    driver.get(check_url)

    # The fixed list on the same round.
    fixed = write_demo(tmp_path / "名单.xlsx")
    driver.find_element(By.CSS_SELECTOR, "form.upload input[type=file]").send_keys(str(fixed))
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.upload button"))
    page = _wait_for(driver, check_url, "可以生成")
    assert "共 40 户，8 名志愿者" in page and "错误 0 个" in page
    driver.set_window_size(1280, 900)

    # Build with PDFs, in the background; the page follows the progress.
    round_url = check_url[: -len("/check")]
    driver.get(round_url)
    pdf_box = driver.find_element(By.CSS_SELECTOR, "input[name=pdf]")
    assert pdf_box.is_selected()
    _click(driver, driver.find_element(By.CSS_SELECTOR, "#build button"))
    page = _wait_for(driver, round_url, "生成完成")
    assert "letters.pdf" in page and "slips.pdf" in page and "runsheets.zip" in page

    # Download slips.pdf with the browser's session and read a QR code from it.
    link = driver.find_element(By.LINK_TEXT, "slips.pdf").get_attribute("href")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(link, headers={"Cookie": cookie})) as r:
        assert r.headers["Content-Type"] == "application/pdf"
        assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
        (tmp_path / "slips.pdf").write_bytes(r.read())
    payloads = _decode_pdf_qrs(tmp_path / "slips.pdf")
    assert len(payloads) == 40
    slip_url = payloads[0]
    assert slip_url.startswith(server.url.upper() + "/H/")

    # The volunteer of that slip logs in with the badge from the volunteers page.
    driver.get(round_url + "/volunteers")
    badge = driver.find_element(By.CSS_SELECTOR, ".badge code").text
    assert badge.startswith(server.url + "/V/")
    assert driver.find_element(By.CSS_SELECTOR, ".badge img").size["width"] >= 150
    driver.get(badge)
    assert driver.current_url == server.url + "/home"
    driver.get(slip_url)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    # Recorded by the form, or by the page's offline queue when its script has loaded (then
    # without the banner): either way the ledger has it within moments.
    ledger = app.extensions["letterpress"].ledger
    code = slip_url.rsplit("/", 1)[1]
    end = time.time() + 30
    while ledger.household_by_code(code).state != "delivered" and time.time() < end:
        time.sleep(0.3)
    assert ledger.household_by_code(code).state == "delivered"
    driver.get(slip_url)
    assert "已登记" in _text(driver) and "登记：已签收" in _text(driver)

    # Staff see it on the dashboard and on the round page.
    driver.get(server.url + "/dashboard")
    assert "共 40 户：已送达 1，未送达 0，待派送 39，已撤出 0" in _text(driver)
    driver.get(round_url)
    assert "共 40 户：已送达 1，未送达 0，待派送 39，已撤出 0" in _text(driver)
    for width in (1280, 390):
        _shot(driver, "console-round", width, shots)
    done = [(a["who"], a["action"]) for a in accounts.actions(app.extensions["letterpress"]
                                                              .ledger)]
    assert ("王芳", "build") in done
