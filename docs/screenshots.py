"""Make the phone screenshots of README ("On the phone"), 390 pixels wide, in docs/.

    python docs/screenshots.py

A fictional round is served on loopback and opened in headless Chromium as a
phone: the round list, a slip page, and a slip recorded without a connection.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from test_phone_offline import DevTools, _conditions  # noqa: E402

from letterpress.ledger import Ledger  # noqa: E402
from letterpress.models import BatchInfo, Household, Recipient  # noqa: E402
from letterpress.server import close_app, create_app  # noqa: E402
from letterpress.server.run import BackgroundServer  # noqa: E402

WIDTH = 390
PEOPLE = [  # (name, honorific, compound, building, room, phone, notes, volunteer)
    ("王秀英", "奶奶", "沙湖小区", "3栋", "401室", "13800001111", "听力不好请大声敲门", "李明"),
    ("李强", "爷爷", "沙湖小区", "3栋", "502室", "13900002222", "", "李明"),
    ("张桂兰", "奶奶", "沙湖小区", "5栋", "101室", "13700003333", "腿脚不便，请送到门口", "李明"),
    ("刘德华", "爷爷", "电车宿舍", "1栋", "202室", "13600004444", "", "李明"),
    ("陈春梅", "奶奶", "电车宿舍", "2栋", "301室", "13500005555", "上午在家", "李明"),
    ("赵国庆", "爷爷", "九天公寓", "1栋", "601室", "13400006666", "请先打电话", "李明"),
    ("周永福", "爷爷", "九天公寓", "2栋", "402室", "13300007777", "", "陈晓"),
]


def households():
    out = []
    for seq, (name, hon, compound, building, room, phone, notes, vol) in enumerate(PEOPLE, 1):
        r = Recipient(seq + 1, f"Q{seq:02d}", name, hon, f"武昌区水果湖街{compound}{building}{room}",
                      compound, building, "", room, phone, "独居老人", volunteer=vol,
                      package="肉制品、蔬菜食品套餐", notes=notes)
        out.append(Household(seq, r))
    return out


def phone(profile: Path):
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={WIDTH},844",
                 "--force-device-scale-factor=1", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                            options=options)


def shot(drv, path: Path, height=None) -> None:
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": False})
    full = drv.execute_script("return Math.max(document.documentElement.scrollHeight, "
                              "document.body.scrollHeight)") + 16
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": height or full, "deviceScaleFactor": 1, "mobile": False})
    drv.save_screenshot(str(path))
    drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"wrote {path}")


def main() -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="lp-shots-") as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        Ledger.open(url, create=True).close()
        app = create_app(url)
        server = BackgroundServer(app).start()
        drv = phone(Path(tmp) / "profile")
        try:
            led = app.extensions["letterpress"].ledger
            reg = led.register_batch(BatchInfo("2020-02-24 青鱼嘴 慰问物资", "青鱼嘴社区志愿服务队",
                                               dt.date(2020, 2, 24)), households(), server.url)
            h = reg.households
            led.record(h[1].code, "delivered", "李明", source="web")
            led.record(h[3].code, "not-home", "李明", note="敲门无人", source="web")
            led.record(h[4].code, "delivered", "李明", source="web")
            drv.get(reg.volunteers[0].url)
            WebDriverWait(drv, 20).until(lambda d: d.find_element(
                By.TAG_NAME, "html").get_attribute("data-lp-kept"))
            shot(drv, HERE / "phone-round.png")
            drv.get(h[0].url)
            shot(drv, HERE / "phone-slip.png", 844)
            drv.execute_cdp_cmd("Network.enable", {})
            drv.execute_cdp_cmd("Network.emulateNetworkConditions", _conditions(False))
            tools = DevTools(drv)
            tools.network(False)
            drv.get(h[2].url)
            button = drv.find_element(By.CSS_SELECTOR, "button[value=delivered]")
            button.click()
            WebDriverWait(drv, 20).until(lambda d: "1 条待发送" in d.find_element(
                By.TAG_NAME, "body").text)
            shot(drv, HERE / "phone-offline.png", 844)
            tools.network(True)
            tools.close()
        finally:
            drv.quit()
            server.stop()
            close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
