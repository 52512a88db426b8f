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


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
