"""Under LETTERPRESS_REQUIRE_ALL=1 no test may skip, whatever the way it skips."""
from __future__ import annotations

import pytest
from conftest import ROOT

pytest_plugins = ["pytester"]

SKIPPING = '''
import pytest

def test_plain_skip():
    pytest.skip("no reason at all")

def test_importorskip():
    pytest.importorskip("a_module_that_is_not_there")

@pytest.mark.skipif(True, reason="skipped by a mark")
def test_skipif():
    pass

@pytest.mark.skip(reason="always")
def test_skip_mark():
    pass

@pytest.fixture
def skipping_fixture():
    pytest.skip("the fixture skips")

def test_fixture_skip(skipping_fixture):
    pass

def test_passes():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("another_module_that_is_not_there")

def test_never_runs():
    pass
'''


@pytest.fixture
def inner(pytester):
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_skipping=SKIPPING, test_module_skip=MODULE_SKIP)
    return pytester


def test_skips_still_skip_locally(inner, monkeypatch):
    monkeypatch.delenv("LETTERPRESS_REQUIRE_ALL", raising=False)
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=6, xfailed=1)


def test_every_skip_fails_under_require_all(inner, monkeypatch):
    monkeypatch.setenv("LETTERPRESS_REQUIRE_ALL", "1")
    result = inner.runpytest("-p", "no:cacheprovider", "-rf", "--continue-on-collection-errors")
    # A skip in the call fails the test; one in setup (marks, fixtures) or collection is an error.
    result.assert_outcomes(passed=1, failed=2, errors=4, xfailed=1)
    assert result.ret != 0
    out = result.stdout.str()
    for reason in ("no reason at all", "a_module_that_is_not_there", "skipped by a mark",
                   "always", "the fixture skips", "another_module_that_is_not_there"):
        assert reason in out
    assert "LETTERPRESS_REQUIRE_ALL=1 lets no test skip" in out
