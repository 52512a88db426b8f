"""End to end in real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

The app is served by waitress on a free loopback port in a background thread.
Skips locally when Chromium is missing; fails under LETTERPRESS_REQUIRE_ALL=1.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import os
from pathlib import Path

import pytest
from conftest import assert_screenshot, require, require_program

from letterpress.ledger import Ledger
from letterpress.models import BatchInfo, Household, Recipient
from letterpress.server import close_app, create_app
from letterpress.server.run import BackgroundServer

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PHONE = (390, 844)


def _household(seq, key, name, honorific, compound, building, room, phone, category, volunteer):
    return Household(seq, Recipient(seq + 1, key, name, honorific,
                                    f"武昌区水果湖街{compound}{building}{room}", compound, building,
                                    "", room, phone, category, volunteer=volunteer,
                                    package="肉制品、蔬菜食品套餐"))


HOUSEHOLDS = [
    _household(1, "Q01", "王秀英", "奶奶", "沙湖小区", "3栋", "401室", "13800001111", "独居老人",
               "李明"),
    _household(2, "Q02", "李强", "爷爷", "电车宿舍", "1栋", "101室", "13900002222", "重症老人",
               "李明"),
]


def _find(program: str, fixed: str, package: str) -> str:
    if Path(fixed).exists():
        return fixed
    return require_program(program, package)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    require(importlib.util.find_spec("selenium") is not None,
            "selenium is not installed (pip install -e '.[test]')")
    binary = _find("chromium", CHROMIUM, "chromium")
    chromedriver = _find("chromedriver", CHROMEDRIVER, "chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")     # never fetch a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 f"--window-size={PHONE[0]},{PHONE[1]}", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture
def site(tmp_path):
    """A ledger with one batch whose codes point at a live waitress server."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    Ledger.open(url, create=True).close()
    app = create_app(url)
    server = BackgroundServer(app).start()
    try:
        ledger = app.extensions["letterpress"].ledger
        reg = ledger.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队",
                                              dt.date(2020, 2, 24)), HOUSEHOLDS, server.url)
        yield server, ledger, reg
    finally:
        server.stop()
        close_app(app)


def _text(drv) -> str:
    from selenium.webdriver.common.by import By
    return drv.find_element(By.TAG_NAME, "body").text


def _click(drv, element) -> None:
    """Click a link or submit button and wait until the next page has loaded."""
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        element.click()
    except StaleElementReferenceException:
        pass        # the click already started the next page
    except WebDriverException as exc:
        # chromedriver may report the node gone when the click navigates at once.
        if "does not belong to the document" not in str(exc):
            raise
    def gone(_drv) -> bool:
        try:
            return EC.staleness_of(element)(_drv)
        except WebDriverException as exc:   # the node left the document while asked about
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(drv, 20).until(gone)
    WebDriverWait(drv, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def _css_rgb(value: str):
    """``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` -> (r, g, b)."""
    return tuple(int(float(x)) for x in value[value.index("(") + 1:-1].split(",")[:3])


def assert_screenshot_shows(drv, shot: Path, button) -> None:
    """The screenshot is the whole phone-sized page, not blank, with ``button`` painted in
    its own colour where the page says it is."""
    from PIL import Image

    assert_screenshot(shot, drv)
    width, ratio = drv.execute_script("return [window.innerWidth, window.devicePixelRatio]")
    assert width <= PHONE[0]
    image = Image.open(shot).convert("RGB")
    background = max(image.getcolors(maxcolors=image.width * image.height))[1]
    fill = _css_rgb(button.value_of_css_property("background-color"))
    assert fill != background
    x = (button.location["x"] + 6) * ratio                      # inside, left of the label
    y = (button.location["y"] + button.size["height"] / 2) * ratio
    scroll = drv.execute_script("return window.scrollY") * ratio
    sample = image.getpixel((round(x), round(y - scroll)))
    assert max(abs(a - b) for a, b in zip(sample, fill)) <= 8, (sample, fill)


def test_volunteer_records_delivery_and_staff_sees_it(driver, site, tmp_path):
    from selenium.webdriver.common.by import By

    server, ledger, reg = site
    driver.delete_all_cookies()
    slip_url = reg.households[0].url          # the QR payload: upper case, as printed
    assert slip_url.startswith(server.url.upper() + "/H/")

    # Badge link from the run sheet: logs the phone in.
    driver.get(reg.volunteers[0].url)
    assert driver.current_url == server.url + "/home"
    assert "已登录：李明" in _text(driver)

    # The slip, as the phone camera opens it.
    driver.get(slip_url)
    page = _text(driver)
    assert "王秀英" in page and "沙湖小区3栋401室" in page
    call = driver.find_element(By.CSS_SELECTOR, "a.call")
    assert call.get_attribute("href") == "tel:13800001111"
    driver.set_window_size(*PHONE)
    shot = tmp_path / "volunteer-page.png"
    driver.save_screenshot(str(shot))
    # The stylesheet is applied (CSP allows /static) and the main button is big enough to tap.
    button = driver.find_element(By.CSS_SELECTOR, "button[value=delivered]")
    assert button.size["height"] >= 48 and button.size["width"] >= 250
    assert_screenshot_shows(driver, shot, button)

    _click(driver, button)
    assert driver.current_url == slip_url.replace(server.url.upper(), server.url)
    page = _text(driver)
    assert "已登记：已送达" in page and "已签收" in page
    assert ledger.household_by_code(reg.households[0].code).state == "delivered"

    # Staff open the dashboard with the one-time link and see the delivery.
    driver.delete_all_cookies()
    driver.get(f"{server.url}/S/{ledger.new_staff_token()}")
    assert driver.current_url == server.url + "/dashboard"
    page = _text(driver)
    assert "共 2 户：已送达 1，未送达 0，待派送 1，已撤出 0" in page
    assert "李强" in page                       # outstanding list
    bar = driver.find_element(By.CSS_SELECTOR, ".bar.big .seg.d")
    assert bar.size["width"] > 0


def test_stranger_sees_masked_page_and_cannot_record(driver, site):
    from selenium.webdriver.common.by import By

    server, ledger, reg = site
    driver.delete_all_cookies()
    slip_url = reg.households[1].url
    driver.get(slip_url)
    page = _text(driver)
    assert "李*" in page and "电车宿舍 1栋" in page
    assert "李强" not in page and "13900002222" not in page and "101" not in page
    assert not driver.find_elements(By.TAG_NAME, "form")

    # A logged-in page whose cookie is gone by the time the button is tapped: refused.
    driver.get(reg.volunteers[0].url)
    driver.get(slip_url)
    assert "13900002222" in _text(driver)
    driver.delete_all_cookies()
    _click(driver, driver.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    assert "请先登录" in _text(driver)
    assert ledger.household_by_code(reg.households[1].code).state == "outstanding"

    # Language switch, remembered.
    driver.get(slip_url)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "a.lang"))
    assert "How to log in" in _text(driver)
    driver.get(slip_url)
    assert "How to log in" in _text(driver)


def _decode_pdf_qrs(path: Path) -> list:
    """Every QR payload on every page of a PDF, rendered at about 220 dpi."""
    import pypdfium2
    import zxingcpp

    found = []
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        for page in pdf:
            image = page.render(scale=3).to_pil()
            found += [r.text for r in zxingcpp.read_barcodes(image)
                      if r.format == zxingcpp.BarcodeFormat.QRCode]
    finally:
        pdf.close()
    return found


def test_links_decoded_from_printed_run_sheet_and_slips(driver, site, tmp_path):
    """The badge QR of the real run sheet and a slip QR of the real slips.pdf, opened in Chromium."""
    from selenium.webdriver.common.by import By

    require(importlib.util.find_spec("pypdfium2") is not None
            and importlib.util.find_spec("zxingcpp") is not None,
            "pypdfium2 and zxing-cpp are needed to read the printed QR codes")
    from letterpress.config import Settings
    from letterpress.pipeline import build as batch

    server, ledger, reg = site
    info = BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队", dt.date(2020, 2, 24))
    slips_pdf, runsheets = batch.write_slips(Settings(), info, reg.households, reg.volunteers,
                                             tmp_path)
    slip_urls = _decode_pdf_qrs(slips_pdf)
    assert sorted(slip_urls) == sorted(h.url for h in reg.households)
    (sheet,) = sorted(Path(runsheets).glob("*.pdf"))
    badges = [u for u in _decode_pdf_qrs(sheet) if "/V/" in u]
    assert badges == [reg.volunteers[0].url]

    driver.delete_all_cookies()
    driver.get(badges[0])
    assert "已登录：李明" in _text(driver)
    driver.get(slip_urls[0])
    household = next(h for h in reg.households if h.url == slip_urls[0])
    assert household.name in _text(driver)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "button[value=delivered]"))
    assert "已登记：已送达" in _text(driver)
    assert ledger.household_by_code(household.code).state == "delivered"
    assert ledger.status()["batches"][0]["delivered"] == 1
