"""The error-code catalogue: every code the library raises is in it, and each entry is raised."""
from __future__ import annotations

import errorscan
import pytest
from click.testing import CliRunner

from letterpress.cli import main
from letterpress.errors import (
    CATALOGUE,
    CheckFailed,
    ExitStatus,
    InputError,
    LetterpressError,
    error,
    exit_status_of,
)


def test_every_code_raised_is_in_the_catalogue():
    uses, unknown = errorscan.scan()
    missing = sorted({f"{u.code} ({u.file}:{u.line})" for u in uses if u.code not in CATALOGUE})
    assert missing == [], "add these codes to letterpress.errors.CATALOGUE"
    assert unknown == [], "a code that is not a literal: name it, or list the place in PASS_THROUGH"


def test_every_catalogue_entry_is_raised_somewhere():
    assert sorted(set(CATALOGUE) - errorscan.codes()) == []


def test_codes_the_library_tests_for_are_in_the_catalogue():
    compared = errorscan.codes_compared()
    assert compared, "the scan finds the comparisons (exc.code == ...)"
    assert sorted({u.code for u in compared} - set(CATALOGUE)) == []


def test_the_scan_sees_every_kind_of_place():
    codes = errorscan.codes()
    assert "phone_scientific" in codes            # Finding(code=...) in rowchecks
    assert "template_syntax" in codes             # self._problem("template_syntax", ...)
    assert "ledger_unreachable" in codes          # code="a" if busy else "b"
    assert "check_failed" in codes                # CheckFailed(...): the class's own code
    assert "bad_config" in codes                  # ConfigError(...) without code=
    assert "empty_field" in codes                 # warning("empty_field", ...)
    assert "error on %s %s" not in codes          # app.logger.error(...) is no Problem
    assert "bad_request" not in codes             # the JSON API's own error(400, ...) helper


def test_catalogue_lines_are_well_formed():
    for code, entry in CATALOGUE.items():
        assert code == entry.code and code.isidentifier() and code == code.lower()
        assert isinstance(entry.exit_status, ExitStatus)
        assert entry.meaning and entry.meaning == entry.meaning.strip()


def test_exit_status_comes_from_the_catalogue():
    assert LetterpressError("x", code="pdf_failed").exit_status == ExitStatus.PARTIAL
    assert InputError("x", code="bad_csv").exit_status == ExitStatus.ERROR
    assert CheckFailed([error("missing_name", "no name")]).exit_status == ExitStatus.ERROR
    assert exit_status_of("empty_field") == ExitStatus.OK        # a warning stops nothing
    assert exit_status_of("no_such_code") == ExitStatus.ERROR


@pytest.mark.parametrize("raised, status, shown, not_shown", [
    (InputError("the file x.csv does not exist", code="file_not_found"), 1,
     "Error: the file x.csv does not exist", "bug"),
    (LetterpressError("3 of 9 letters failed", code="pdf_failed"), 3,
     "Error: 3 of 9 letters failed", "bug"),
    (ValueError("a programming mistake"), 1,
     "Internal error: ValueError('a programming mistake')", "Error: a programming"),
])
def test_bugs_stay_distinct_from_user_errors(tmp_path, monkeypatch, raised, status, shown,
                                             not_shown):
    from letterpress.pipeline import build as batch

    def check(*args, **kwargs):
        raise raised

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(batch, "check", check)
    result = CliRunner().invoke(main, ["check", "-r", "x.csv", "-t", "zh"])
    assert result.exit_code == status
    assert shown in result.stderr and not_shown not in result.stderr
    assert (tmp_path / "output" / "letterpress-error.log").exists() == (status == 1 and
                                                                        "Internal" in shown)
