"""Shared test helpers.

Tests that need an outside tool (LibreOffice, Chromium, PostgreSQL, a CJK font)
skip with a reason when it is missing, except when ``LETTERPRESS_REQUIRE_ALL=1``
(as in ``.ci/run``): then a missing tool fails the test. Under that variable no test
may skip for any reason: the hooks below turn every skip (``pytest.skip``,
``importorskip``, ``skipif``, a skipped module) into a failure that gives the reason.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Tests assert English output unless they choose Chinese themselves (LETTERPRESS_LANG=zh or
# letterpress.i18n.using("zh")): a machine with a Chinese locale must not change that.
os.environ["LETTERPRESS_LANG"] = "en"

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def require_all() -> bool:
    return os.environ.get("LETTERPRESS_REQUIRE_ALL") == "1"


def _no_skip(report) -> None:
    if not (require_all() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, but LETTERPRESS_REQUIRE_ALL=1 lets no test skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _no_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _no_skip(outcome.get_result())


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (under LETTERPRESS_REQUIRE_ALL=1) when ``available`` is false."""
    if available:
        return
    if require_all():
        pytest.fail(f"required for this run: {reason}")
    pytest.skip(reason)


def require_program(name: str, package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (Debian package {package})")
    return path


def assert_screenshot(path: Path, drv) -> None:
    """A screenshot shows the whole window (its size in pixels) and a page, not a blank:
    much of it painted apart from the background, in many colours (anti-aliased text)."""
    from PIL import Image

    width, height, ratio = drv.execute_script(
        "return [window.innerWidth, window.innerHeight, window.devicePixelRatio]")
    image = Image.open(path).convert("RGB")
    assert image.size == (round(width * ratio), round(height * ratio))
    colours = image.getcolors(maxcolors=image.width * image.height)
    background = max(colours)[1]
    painted = sum(n for n, colour in colours if colour != background)
    assert painted > 0.03 * image.width * image.height, f"{path.name} is nearly blank"
    assert len(colours) > 50, f"{path.name} shows no text"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
