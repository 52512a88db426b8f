"""Shared test helpers.

Tests that need an outside tool (LibreOffice, Chromium, PostgreSQL, a CJK font)
skip with a reason when it is missing, except when ``LETTERPRESS_REQUIRE_ALL=1``
(as in ``.ci/run``): then a missing tool fails the test.
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


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (under LETTERPRESS_REQUIRE_ALL=1) when ``available`` is false."""
    if available:
        return
    if os.environ.get("LETTERPRESS_REQUIRE_ALL") == "1":
        pytest.fail(f"required for this run: {reason}")
    pytest.skip(reason)


def require_program(name: str, package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (Debian package {package})")
    return path


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
