"""The ledger: registering batches, badges, the rule of record, schema versions, status.

Every test that takes ``ledger`` or ``db_url`` runs on SQLite and, when
``LETTERPRESS_TEST_PG`` names a database, on PostgreSQL too.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib
import json
import re
import threading

import pytest
from ledger_fixtures import (  # noqa: F401
    BASE_URL,
    BATCH,
    PEOPLE,
    codes_by_key,
    count_events,
    db_url,
    ledger,
    make_households,
    register,
)
from sqlalchemy import create_engine, inspect, select, text

from letterpress.choices import DELIVERED_OUTCOMES, NOTE_REQUIRED, OUTCOMES
from letterpress.errors import LedgerError
from letterpress.ledger import BadgeRefused, Ledger, RecordError, default_url
from letterpress.ledger import codes as codes_mod
from letterpress.ledger import schema as S
from letterpress.models import BatchInfo

UTC = dt.timezone.utc
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def household(led, reg, key):
    """The HouseholdView of recipient id ``key``."""
    return led.household_by_code(codes_by_key(reg)[key])


# --- registering a batch ------------------------------------------------------------------------

def test_register_gives_every_household_a_code_and_url(ledger):
    reg = register(ledger)
    assert (reg.new, reg.kept, reg.withdrawn, reg.returned, reg.warnings) == (6, 0, 0, 0, ())
    assert [h.id for h in reg.households] == [p[0] for p in PEOPLE]
    printed = [h.code for h in reg.households]
    assert len(set(printed)) == 6
    for h in reg.households:
        assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]", h.code)
        assert codes_mod.printed(h.code) == h.code
        assert h.url == f"{BASE_URL}/H/{codes_mod.normalise(h.code)}".upper()
        assert h.name not in h.url and h.recipient.phone not in h.url
    assert [v.name for v in reg.volunteers] == ["林小舟", "高山青"]
    assert [v.index for v in reg.volunteers] == [1, 2]
    assert ledger.find_batch(BATCH.title).id == reg.batch_id


def test_register_again_keeps_codes_and_events(ledger):
    first = register(ledger)
    done = ledger.record(first.households[0].code, "delivered", "林小舟")
    again = register(ledger)
    assert codes_by_key(again) == codes_by_key(first)
    assert (again.new, again.kept, again.withdrawn) == (0, 6, 0)
    assert ledger.events_for(done.household.id)[0].id == done.event_id
    assert household(ledger, again, "1").state == "delivered"


def test_changed_list_keeps_unchanged_codes_withdraws_removed_and_adds_new(ledger):
    first = register(ledger)
    old = codes_by_key(first)
    ledger.record(old["3"], "not-home", "高山青", note="敲门无人")
    changed = [PEOPLE[5], PEOPLE[0], PEOPLE[1], PEOPLE[3], ("7", "卫七星", "高山青")]  # 3 and 5 gone
    reg = register(ledger, changed)
    now = codes_by_key(reg)
    assert all(now[k] == old[k] for k in ("1", "2", "4", "6"))
    assert now["7"] not in old.values()
    assert (reg.new, reg.kept, reg.withdrawn, reg.returned) == (1, 4, 2, 0)
    assert [h.seq for h in reg.households] == [1, 2, 3, 4, 5]
    gone = {r.key: r for r in ledger.household_rows(reg.batch_id) if r.state == "withdrawn"}
    assert set(gone) == {"3", "5"}
    assert gone["3"].last_outcome == "not-home"              # its events are kept
    assert len(ledger.events_for(gone["3"].id)) == 1
    with pytest.raises(RecordError) as exc:
        ledger.record(old["5"], "delivered", "高山青")
    assert exc.value.code == "withdrawn"
    back = register(ledger, PEOPLE)                          # 3 and 5 come back, 7 goes
    assert codes_by_key(back)["3"] == old["3"] and codes_by_key(back)["5"] == old["5"]
    assert (back.new, back.kept, back.withdrawn, back.returned) == (0, 4, 1, 2)
    assert household(ledger, back, "3").state == "failed"


def test_id_reused_with_another_name_warns_and_gets_a_new_code(ledger):
    first = register(ledger)
    old = codes_by_key(first)
    ledger.record(old["2"], "delivered", "林小舟")
    renumbered = list(PEOPLE)
    renumbered[1] = ("2", "蒋新来", "林小舟")
    reg = register(ledger, renumbered)
    assert [w.code for w in reg.warnings] == ["id_reused"]
    warning = reg.warnings[0]
    assert not warning.is_error and warning.where.row == 3
    assert "'2'" in warning.message and "吴二娘" in warning.message and "蒋新来" in warning.message
    assert codes_by_key(reg)["2"] != old["2"]
    assert (reg.new, reg.kept, reg.withdrawn) == (1, 5, 1)
    rows = [r for r in ledger.household_rows(reg.batch_id) if r.key == "2"]
    assert sorted((r.name, r.state) for r in rows) == \
        [("吴二娘", "withdrawn"), ("蒋新来", "outstanding")]
    assert ledger.household_by_code(codes_by_key(reg)["2"]).name == "蒋新来"
    with pytest.raises(RecordError) as exc:         # the old slip cannot confirm the new one
        ledger.record(old["2"], "delivered", "林小舟")
    assert exc.value.code == "withdrawn"


def test_duplicate_ids_are_refused(ledger):
    with pytest.raises(LedgerError) as exc:
        register(ledger, [PEOPLE[0], ("1", "卫七星", "")])
    assert exc.value.code == "duplicate_id"
    assert ledger.batches() == []


# --- volunteers' badges -------------------------------------------------------------------------

def test_badge_tokens_are_stable_url_safe_long_and_not_stored(ledger, db_url):
    first = register(ledger)
    again = register(ledger, list(reversed(PEOPLE)))
    tokens = {v.name: v.token for v in first.volunteers}
    assert {v.name: v.token for v in again.volunteers} == tokens
    assert [v.name for v in again.volunteers] == ["林小舟", "高山青"]
    for v in first.volunteers:
        assert TOKEN_RE.match(v.token) and len(v.token) * 6 >= 128
        assert v.url == f"{BASE_URL}/V/{v.token}"
        assert ledger.authenticate(v.token) == (first.batch_id, v.name)
    assert len(set(tokens.values())) == 2
    with ledger.transaction() as conn:
        stored = [str(x) for row in conn.execute(select(S.volunteers)) for x in row]
    assert not any(t in s for t in tokens.values() for s in stored)
    assert ledger.volunteers(first.batch_id) == list(first.volunteers)
    with Ledger.open(db_url) as other:            # a second server on the same ledger agrees
        assert other.authenticate(tokens["高山青"]) == (first.batch_id, "高山青")


def test_revoking_a_badge_changes_it(ledger):
    reg = register(ledger)
    old = reg.volunteers[0].token
    new = ledger.revoke_volunteer(reg.batch_id, "林小舟")
    assert new != old and TOKEN_RE.match(new)
    with pytest.raises(RecordError) as exc:
        ledger.authenticate(old)
    assert exc.value.code == "not_authorised"
    assert ledger.authenticate(new) == (reg.batch_id, "林小舟")
    assert register(ledger).volunteers[0].token == new      # rebuilt run sheets carry the new one
    with pytest.raises(LedgerError) as exc:
        ledger.revoke_volunteer(reg.batch_id, "无此人")
    assert exc.value.code == "unknown_volunteer"


def test_badges_of_another_batch_or_off_the_list_are_refused(ledger):
    one = register(ledger)
    two = register(ledger, [("1", "周一鸣", "高山青")], info=BatchInfo("第二轮"))
    token = one.volunteers[0].token
    assert ledger.authenticate(token, batch_id=one.batch_id)[0] == one.batch_id
    for bad in ("", "x" * 43, token + "A", token.lower() if token.lower() != token else token[1:]):
        with pytest.raises(RecordError) as exc:
            ledger.authenticate(bad)
        assert exc.value.code == "not_authorised"
    with pytest.raises(RecordError) as exc:
        ledger.authenticate(token, batch_id=two.batch_id)
    assert exc.value.code == "not_authorised"
    assert two.volunteers[0].token != one.volunteers[1].token   # same name, other batch
    register(ledger, [p for p in PEOPLE if p[2] != "林小舟"])    # 林小舟 dropped from the list
    with pytest.raises(RecordError):
        ledger.authenticate(token)


# --- the rule of record -------------------------------------------------------------------------

@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_outcome(ledger, outcome):
    reg = register(ledger)
    note = "交给邻居郑先生" if outcome in NOTE_REQUIRED else ""
    at = dt.datetime(2020, 2, 24, 10, 32, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    res = ledger.record(reg.households[0].code.lower(), outcome, "林小舟", at=at, note=note,
                        source="web")
    expected = "delivered" if outcome in DELIVERED_OUTCOMES else "failed"
    assert (res.status, res.state, res.household.state) == ("created", expected, expected)
    assert res.event.at == dt.datetime(2020, 2, 24, 2, 32, tzinfo=UTC)
    assert res.event.at.tzinfo is not None and res.event.recorded_at.tzinfo is not None
    (ev,) = ledger.events_for(res.household.id)
    assert (ev.outcome, ev.volunteer, ev.note, ev.source, ev.duplicate) == \
        (outcome, "林小舟", note, "web", False)
    assert ev.at == dt.datetime(2020, 2, 24, 2, 32, tzinfo=UTC)      # round-trips as aware UTC
    row = next(r for r in ledger.household_rows(reg.batch_id) if r.key == "1")
    assert (row.state, row.last_outcome, row.last_by, row.last_note) == \
        (expected, outcome, "林小舟", note)


def _error_cases(led, reg):
    code = reg.households[0].code
    wrong_check = code[:-1] + next(c for c in "0123456789ABCDEF" if c != code[-1])
    other = led.register_batch(BatchInfo("另一批"), make_households(PEOPLE[:1]), BASE_URL)
    revoked = reg.households[1].code
    led.reissue_codes(reg.batch_id, ["2"])
    register(led, PEOPLE[:5])                                   # household 6 withdrawn
    return {
        "malformed": (dict(code="HELLO-WORLD", outcome="delivered"), "unknown_code"),
        "wrong check symbol": (dict(code=wrong_check, outcome="delivered"), "unknown_code"),
        "not in the ledger": (dict(code=codes_mod.new_code(), outcome="delivered"),
                              "unknown_code"),
        "revoked": (dict(code=revoked, outcome="delivered"), "revoked_code"),
        "bad outcome": (dict(code=code, outcome="lost"), "bad_outcome"),
        "proxy without note": (dict(code=code, outcome="proxy"), "note_required"),
        "other without note": (dict(code=code, outcome="other", note="  "), "note_required"),
        "other batch": (dict(code=other.households[0].code, outcome="delivered",
                             batch_id=reg.batch_id), "not_authorised"),
        "withdrawn": (dict(code=reg.households[5].code, outcome="delivered"), "withdrawn"),
        "nonce too long": (dict(code=code, outcome="delivered", nonce="n" * 201), "bad_nonce"),
    }


def test_every_error_code(ledger):
    reg = register(ledger)
    cases = _error_cases(ledger, reg)
    before = count_events(ledger)
    for name, (kwargs, code) in cases.items():
        with pytest.raises(RecordError) as exc:
            ledger.record(volunteer="林小舟", **kwargs)
        assert exc.value.code == code, name
        assert isinstance(exc.value, LedgerError) and str(exc.value)
    assert count_events(ledger) == before == 0


def test_repeated_nonce_is_one_event(ledger):
    reg = register(ledger)
    code = reg.households[0].code
    first = ledger.record(code, "not-home", "林小舟", nonce="a1b2")
    again = ledger.record(code, "not-home", "林小舟", nonce="a1b2")
    other_code = ledger.record(reg.households[1].code, "delivered", "林小舟", nonce="a1b2")
    assert (first.status, again.status, other_code.status) == ("created", "repeated", "repeated")
    assert first.event_id == again.event_id == other_code.event_id
    assert count_events(ledger) == 1
    assert ledger.record(code, "not-home", "林小舟", nonce="c3d4").status == "created"
    assert count_events(ledger) == 2
    other = ledger.register_batch(BatchInfo("另一批"), make_households(PEOPLE[:1]), BASE_URL)
    with pytest.raises(RecordError) as exc:     # a nonce never shows another batch's household
        ledger.record(other.households[0].code, "delivered", "高山青", nonce="a1b2",
                      batch_id=other.batch_id)
    assert exc.value.code == "not_authorised"


def test_duplicate_delivery_is_recorded_and_flagged(ledger):
    reg = register(ledger)
    code = reg.households[0].code
    first = ledger.record(code, "delivered", "林小舟")
    second = ledger.record(code, "proxy", "高山青", note="邻居代收")
    late_failure = ledger.record(code, "not-home", "高山青")
    assert first.status == "created" and not first.duplicate
    assert (second.status, second.duplicate, second.state) == \
        ("already_delivered", True, "delivered")
    assert (late_failure.status, late_failure.duplicate, late_failure.state) == \
        ("already_delivered", True, "delivered")
    assert [e.duplicate for e in ledger.events_for(first.household.id)] == [False, True, True]
    row = next(r for r in ledger.household_rows(reg.batch_id) if r.key == "1")
    assert (row.state, row.last_outcome, row.last_by, row.duplicates) == \
        ("delivered", "delivered", "林小舟", 2)


def test_failed_then_delivered(ledger):
    reg = register(ledger)
    code = reg.households[2].code
    t0 = dt.datetime(2020, 2, 24, 9, 0, tzinfo=UTC)
    assert ledger.record(code, "not-home", "高山青", at=t0).state == "failed"
    assert ledger.record(code, "hospital", "高山青", at=t0 + dt.timedelta(hours=1)).state == "failed"
    row = next(r for r in ledger.household_rows(reg.batch_id) if r.key == "3")
    assert (row.last_outcome, row.last_at) == ("hospital", t0 + dt.timedelta(hours=1))
    res = ledger.record(code, "delivered", "高山青", at=t0 + dt.timedelta(days=1))
    assert (res.status, res.duplicate, res.state) == ("created", False, "delivered")


def test_undo(ledger):
    reg = register(ledger)
    code = reg.households[0].code
    first = ledger.record(code, "delivered", "林小舟")
    dup = ledger.record(code, "delivered", "高山青")
    with pytest.raises(RecordError) as exc:
        ledger.undo(first.event_id, "  ", by="站长")
    assert exc.value.code == "reason_required"
    undone = ledger.undo(first.event_id, "扫错了户", by="站长")
    assert undone.status == "undone" and undone.state == "delivered"   # the other delivery stands
    undone2 = ledger.undo(dup.event_id, "也扫错了", by="站长")
    assert undone2.state == "outstanding"
    events = ledger.events_for(first.household.id)
    assert [(e.kind, e.undone) for e in events] == [("outcome", True), ("outcome", True),
                                                     ("undo", False), ("undo", False)]
    assert events[2].note == "扫错了户" and events[2].volunteer == "站长"
    for event_id, code_ in ((first.event_id, "already_undone"), (events[2].id, "cannot_undo"),
                            (999999, "unknown_event")):
        with pytest.raises(RecordError) as exc:
            ledger.undo(event_id, "再来一次", by="站长")
        assert exc.value.code == code_
    again = ledger.record(code, "delivered", "林小舟")
    assert (again.status, again.duplicate) == ("created", False)
    assert ledger.status()["batches"][0]["delivered"] == 1


def test_events_for_batch_has_recent_events_duplicates_and_undos(ledger):
    reg = register(ledger)
    first = ledger.record(reg.households[0].code, "delivered", "林小舟")
    dup = ledger.record(reg.households[0].code, "delivered", "高山青")
    ledger.undo(first.event_id, "扫错了户", by="站长")
    for h in reg.households[1:4]:
        ledger.record(h.code, "not-home", "林小舟")
    evs = ledger.events_for_batch(reg.batch_id, limit=2)
    ids = [e.id for e in evs]
    assert ids == sorted(ids, reverse=True)
    assert dup.event_id in ids                                 # flagged, however old
    assert any(e.kind == "undo" and e.undoes_event_id == first.event_id for e in evs)
    everything = ledger.events_for_batch(reg.batch_id)
    assert len(everything) == 6
    assert next(e for e in everything if e.id == first.event_id).undone


def _race(n, work):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_concurrent_deliveries_of_one_household_exactly_one_wins(ledger, db_url):
    reg = register(ledger)
    code = reg.households[0].code
    ledgers = [Ledger.open(db_url) for _ in range(8)]       # each thread its own connection
    try:
        results = _race(8, lambda i: ledgers[i].record(code, "delivered", f"志愿者{i}",
                                                        nonce=f"race-{i}", source="api"))
    finally:
        for led in ledgers:
            led.close()
    statuses = sorted(r.status for r in results)
    assert statuses == ["already_delivered"] * 7 + ["created"]
    events = ledger.events_for(results[0].household.id)
    assert len(events) == 8
    assert sum(1 for e in events if not e.duplicate) == 1
    winner = next(r for r in results if r.status == "created")
    assert [e.id for e in events if not e.duplicate] == [winner.event_id]


def test_concurrent_same_nonce_is_one_event(ledger, db_url):
    reg = register(ledger)
    ledgers = [Ledger.open(db_url) for _ in range(6)]
    try:   # the same nonce sent for six households at once: no common row lock
        results = _race(6, lambda i: ledgers[i].record(reg.households[i].code, "not-home",
                                                        "林小舟", nonce="same-nonce"))
    finally:
        for led in ledgers:
            led.close()
    assert sorted(r.status for r in results) == ["created"] + ["repeated"] * 5
    assert len({r.event_id for r in results}) == 1
    assert count_events(ledger) == 1


def test_concurrent_deliveries_through_one_ledger_object(ledger):
    """One server process: its threads share one Ledger (SQLite writers queue on its lock)."""
    reg = register(ledger)
    code = reg.households[0].code
    results = _race(8, lambda i: ledger.record(code, "delivered", f"志愿者{i}", nonce=f"one-{i}",
                                               source="api"))
    assert sorted(r.status for r in results) == ["already_delivered"] * 7 + ["created"]
    same = _race(6, lambda i: ledger.record(reg.households[1].code, "not-home", "林小舟",
                                            nonce="one-same"))
    assert sorted(r.status for r in same) == ["created"] + ["repeated"] * 5
    assert count_events(ledger) == 9


def test_write_lock_waits_at_most_the_busy_timeout(tmp_path, monkeypatch):
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", create=True)
    reg = register(led)
    monkeypatch.setattr(S, "SQLITE_BUSY_TIMEOUT", 0.2)
    holding, done = threading.Event(), threading.Event()

    def writer():
        with led.transaction(write=True):
            holding.set()
            done.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert holding.wait(10)
        with pytest.raises(LedgerError) as exc:
            led.record(reg.households[0].code, "delivered", "林小舟")
        assert exc.value.code == "ledger_busy"
    finally:
        done.set()
        t.join(10)
    assert led.record(reg.households[0].code, "delivered", "林小舟").status == "created"
    led.close()


# --- a badge checked by the transaction that records --------------------------------------------

def test_record_with_a_badge_takes_volunteer_and_batch_from_it(ledger):
    reg = register(ledger)
    token = {v.name: v.token for v in reg.volunteers}["高山青"]
    res = ledger.record(reg.households[0].code, "delivered", None, badge=token, nonce="b1",
                        source="api")
    assert res.status == "created" and res.event.volunteer == "高山青"
    assert ledger.events_for(res.household.id)[0].volunteer == "高山青"
    again = ledger.record(reg.households[0].code, "delivered", None, badge=token, nonce="b1",
                          source="api")
    assert (again.status, again.event_id) == ("repeated", res.event_id)
    with pytest.raises(ValueError):
        ledger.record(reg.households[1].code, "delivered", "林小舟", badge=token)
    with pytest.raises(ValueError):
        ledger.record(reg.households[1].code, "delivered", None, badge=token,
                      batch_id=reg.batch_id)


def test_record_refuses_a_revoked_badge_in_its_own_transaction(ledger):
    reg = register(ledger)
    old = {v.name: v.token for v in reg.volunteers}["林小舟"]
    code = reg.households[0].code
    new = ledger.revoke_volunteer(reg.batch_id, "林小舟")
    with pytest.raises(BadgeRefused) as exc:
        ledger.record(code, "delivered", None, badge=old, nonce="r1")
    assert exc.value.code == "not_authorised"
    assert count_events(ledger) == 0
    assert ledger.record(code, "delivered", None, badge=new, nonce="r2").status == "created"
    # Revoked after its first post: the resend with the same nonce is refused too.
    with pytest.raises(BadgeRefused):
        ledger.record(code, "delivered", None, badge=old, nonce="r2")
    register(ledger, [p for p in PEOPLE if p[2] != "林小舟"])    # taken off the list
    with pytest.raises(BadgeRefused):
        ledger.record(reg.households[1].code, "delivered", None, badge=new, nonce="r3")
    assert count_events(ledger) == 1


def test_a_refused_badge_comes_before_every_other_error(ledger):
    reg = register(ledger)
    other = register(ledger, [("1", "周一鸣", "高山青")], info=BatchInfo("第二轮"))
    good = reg.volunteers[0].token
    unknown = "0000000000" + codes_mod.check_symbol("0000000000")
    code = reg.households[1].code
    for kwargs in (dict(code="nonsense"), dict(code=unknown), dict(outcome="lost"),
                   dict(outcome="other"), dict(nonce="n" * 201)):
        args = dict(code=code, outcome="delivered", nonce="p1")
        args.update(kwargs)
        with pytest.raises(BadgeRefused):
            ledger.record(volunteer=None, badge="forged-token", **args)
        with pytest.raises(RecordError) as exc:
            ledger.record(volunteer=None, badge=good, **args)
        assert not isinstance(exc.value, BadgeRefused) and exc.value.code != "not_authorised"
    with pytest.raises(RecordError) as exc:         # a good badge, a code of another batch
        ledger.record(other.households[0].code, "delivered", None, badge=good, nonce="p2")
    assert exc.value.code == "not_authorised" and not isinstance(exc.value, BadgeRefused)
    assert count_events(ledger) == 0


def test_record_gives_back_what_the_ledger_reads(ledger):
    """Values read and written on the driver's cursor are the ones Core gives."""
    reg = register(ledger)
    code = reg.households[0].code
    at = dt.datetime(2020, 2, 24, 10, 32, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    first = ledger.record(code, "proxy", "林小舟", at=at, nonce="v1", note="邻居代收")
    dup = ledger.record(code, "delivered", "高山青", nonce="v2")
    again = ledger.record(code, "proxy", "林小舟", nonce="v1", note="邻居代收")
    stored = ledger.events_for(first.household.id)
    assert [first.event, dup.event] == stored
    assert again.event == stored[0] and again.household == ledger.household_by_code(code)
    assert stored[0].at == at and stored[0].at.tzinfo is not None
    assert stored[1].duplicate is True and stored[0].duplicate is False
    assert dup.household == again.household


def test_prepared_statements_raise_sqlalchemy_errors(ledger):
    from sqlalchemy.exc import IntegrityError

    insert = S.Prepared(S.meta.insert(), column_keys=["key", "value"])
    with pytest.raises(IntegrityError):
        with ledger.transaction(write=True) as conn:
            insert.run(conn, {"key": "schema_version", "value": "99"})
    with ledger.transaction() as conn:
        assert S.read_version(conn) == S.SCHEMA_VERSION


# --- opening, versions and migrations ------------------------------------------------------------

def test_default_url_and_describe(tmp_path):
    assert default_url() == "sqlite:///output/letterpress.db"
    pg = S.parse_url("postgresql+psycopg://clerk:hunter2secret@127.0.0.1:5433/letterpress")
    assert S.describe_url(pg) == "PostgreSQL database letterpress on 127.0.0.1:5433"
    assert "hunter2" not in S.describe_url(pg)
    with Ledger.open(f"sqlite:///{tmp_path}/l.db", create=True) as led:
        assert led.describe() == f"SQLite file {tmp_path}/l.db"


def test_unreachable_database_is_a_clear_error():
    pytest.importorskip("psycopg")
    with pytest.raises(LedgerError) as exc:
        Ledger.open("postgresql+psycopg://clerk:hunter2secret@127.0.0.1:1/letterpress"
                    "?connect_timeout=3")
    assert exc.value.code == "ledger_unreachable"
    assert "PostgreSQL database letterpress on 127.0.0.1:1" in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_missing_ledger_is_not_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in (None, "sqlite:///elsewhere/typo.db"):
        with pytest.raises(LedgerError) as exc:
            Ledger.open(url, create=False)
        assert exc.value.code == "no_ledger"
        assert "letterpress build" in exc.value.hint and "--db" in exc.value.hint
    assert "output/letterpress.db" in str(pytest.raises(LedgerError, Ledger.open).value)
    assert not (tmp_path / "output").exists() and not (tmp_path / "elsewhere").exists()
    (tmp_path / "junk.db").write_text("this is no database\n" * 100)
    with pytest.raises(LedgerError) as exc:
        Ledger.open("sqlite:///junk.db")
    assert exc.value.code == "not_a_ledger"
    with Ledger.open(None, create=True) as led:
        assert led.describe() == "SQLite file output/letterpress.db"
    assert (tmp_path / "output" / "letterpress.db").is_file()


def test_empty_database_without_create_is_no_ledger(db_url):
    if db_url.startswith("sqlite"):
        create_engine(db_url).connect().close()                   # an empty SQLite file
    with pytest.raises(LedgerError) as exc:
        Ledger.open(db_url)
    assert exc.value.code == "no_ledger"


def test_sqlite_settings(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path}/l.db", create=True) as led:
        with led.transaction() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_secret_is_made_once_and_shared(db_url):
    with Ledger.open(db_url, create=True) as one, Ledger.open(db_url) as two:
        assert one.secret() == two.secret() and len(one.secret()) == 32


def test_newer_schema_is_refused(db_url):
    with Ledger.open(db_url, create=True) as led:
        with led.transaction(write=True) as conn:
            conn.execute(S.meta.update().where(S.meta.c.key == "schema_version")
                         .values(value=str(S.SCHEMA_VERSION + 1)))
    with pytest.raises(LedgerError) as exc:
        Ledger.open(db_url)
    assert exc.value.code == "ledger_too_new" and "upgrade letterpress" in exc.value.hint
    engine = create_engine(S.parse_url(db_url))
    with engine.connect() as conn:
        assert conn.execute(select(S.meta.c.value).where(S.meta.c.key == "schema_version")
                            ).scalar() == str(S.SCHEMA_VERSION + 1)
    engine.dispose()


V1_SECRET = "5e" * 32


def _v1_ddl(ts: str, pk: str) -> list:
    """The version 1 schema, written out by hand as letterpress 0.1 created it."""
    text_cols = ", ".join(f"{c} TEXT NOT NULL DEFAULT ''" for c in S.SNAPSHOT_FIELDS)
    return [
        "CREATE TABLE meta (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE batches (id {pk}, title TEXT NOT NULL UNIQUE, date DATE, "
        f"org TEXT NOT NULL, lang VARCHAR(8) NOT NULL, base_url TEXT NOT NULL, "
        f"created_at {ts} NOT NULL, updated_at {ts} NOT NULL)",
        f"CREATE TABLE households (id {pk}, batch_id INTEGER NOT NULL REFERENCES batches (id), "
        f"household_key TEXT NOT NULL, seq INTEGER NOT NULL, {text_cols}, "
        f"created_at {ts} NOT NULL, updated_at {ts} NOT NULL, withdrawn_at {ts})",
        "CREATE INDEX ix_households_batch_key ON households (batch_id, household_key)",
        f"CREATE TABLE codes (code VARCHAR(16) NOT NULL PRIMARY KEY, household_id INTEGER NOT NULL "
        f"REFERENCES households (id), issued_at {ts} NOT NULL, revoked_at {ts}, "
        f"reason TEXT NOT NULL)",
        f"CREATE TABLE volunteers (id {pk}, batch_id INTEGER NOT NULL REFERENCES batches (id), "
        f"name TEXT NOT NULL, idx INTEGER, token_version INTEGER NOT NULL, "
        f"token_hash VARCHAR(64) NOT NULL UNIQUE, created_at {ts} NOT NULL, revoked_at {ts}, "
        f"CONSTRAINT uq_volunteers_batch_name UNIQUE (batch_id, name))",
        f"CREATE TABLE events (id {pk}, household_id INTEGER NOT NULL REFERENCES households (id), "
        f"code VARCHAR(16) NOT NULL REFERENCES codes (code), kind VARCHAR(8) NOT NULL, "
        f"outcome VARCHAR(16) NOT NULL, volunteer TEXT NOT NULL, at {ts} NOT NULL, "
        f"recorded_at {ts} NOT NULL, nonce VARCHAR(200) UNIQUE, note TEXT NOT NULL, "
        f"undoes_event_id INTEGER UNIQUE REFERENCES events (id), duplicate BOOLEAN NOT NULL)",
    ]


def _build_v1(db_url: str) -> dict:
    """A version 1 ledger with one batch, two households, a volunteer and a delivery."""
    url = S.parse_url(db_url)
    pg = url.get_backend_name() == "postgresql"
    engine = create_engine(url)
    when = dt.datetime(2020, 2, 24, 2, 30, tzinfo=UTC)
    stamp = when if pg else "2020-02-24 02:30:00.000000"
    codes = [codes_mod.normalise(codes_mod.new_code()) for _ in range(2)]
    mac = hmac.new(bytes.fromhex(V1_SECRET), b"1:\xe6\x9e\x97\xe5\xb0\x8f\xe8\x88\x9f:1",
                   hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with engine.begin() as conn:
        for ddl in _v1_ddl("TIMESTAMP WITH TIME ZONE" if pg else "DATETIME",
                           "SERIAL PRIMARY KEY" if pg else "INTEGER NOT NULL PRIMARY KEY"):
            conn.execute(text(ddl))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', '1'), "
                          "('secret', :s)"), {"s": V1_SECRET})
        batch_id = conn.execute(text(
            "INSERT INTO batches (title, date, org, lang, base_url, created_at, updated_at) "
            "VALUES (:t, :d, '示例社区', 'zh', :u, :w, :w) RETURNING id"),
            {"t": BATCH.title, "d": "2020-02-24" if not pg else dt.date(2020, 2, 24),
             "u": BASE_URL, "w": stamp}).scalar_one()
        ids = []
        for seq, (key, name, volunteer) in enumerate(PEOPLE[:2], start=1):
            hid = conn.execute(text(
                "INSERT INTO households (batch_id, household_key, seq, name, volunteer, "
                "phone, created_at, updated_at) VALUES (:b, :k, :s, :n, :v, '13800000000', "
                ":w, :w) RETURNING id"),
                {"b": batch_id, "k": key, "s": seq, "n": name, "v": volunteer, "w": stamp}
            ).scalar_one()
            conn.execute(text("INSERT INTO codes (code, household_id, issued_at, reason) "
                              "VALUES (:c, :h, :w, '')"),
                         {"c": codes[seq - 1], "h": hid, "w": stamp})
            ids.append(hid)
        conn.execute(text(
            "INSERT INTO volunteers (batch_id, name, idx, token_version, token_hash, created_at) "
            "VALUES (:b, '林小舟', 1, 1, :h, :w)"),
            {"b": batch_id, "h": hashlib.sha256(token.encode()).hexdigest(), "w": stamp})
        conn.execute(text(
            "INSERT INTO events (household_id, code, kind, outcome, volunteer, at, recorded_at, "
            "nonce, note, duplicate) VALUES (:h, :c, 'outcome', 'delivered', '林小舟', :w, :w, "
            "'v1-nonce', '', :f)"), {"h": ids[0], "c": codes[0], "w": stamp, "f": False})
    engine.dispose()
    return {"batch_id": batch_id, "codes": codes, "token": token, "when": when}


def test_version_1_ledger_is_migrated_with_its_data(db_url):
    old = _build_v1(db_url)
    with Ledger.open(db_url) as led:                    # create=False: it exists, it is migrated
        with led.transaction() as conn:
            assert S.read_version(conn) == S.SCHEMA_VERSION == 4
            assert "ix_households_round" in {
                ix["name"] for ix in inspect(conn).get_indexes("households")}
            assert conn.execute(select(S.events.c.source)).scalars().all() == ["cli"]
            assert conn.execute(select(S.batches.c.purged_at)).scalars().all() == [None]
        assert led.secret() == bytes.fromhex(V1_SECRET)
        assert led.authenticate(old["token"]) == (old["batch_id"], "林小舟")
        rows = list(led.household_rows(old["batch_id"]))
        assert [(r.name, r.state) for r in rows] == [("周一鸣", "delivered"), ("吴二娘", "outstanding")]
        assert rows[0].last_at == old["when"] and rows[0].last_by == "林小舟"
        repeat = led.record(old["codes"][0], "delivered", "林小舟", nonce="v1-nonce")
        assert repeat.status == "repeated"
        new = led.record(old["codes"][1], "delivered", "林小舟", source="web")
        assert (new.status, new.event.source) == ("created", "web")
        reg = register(led, PEOPLE[:3])                  # rebuilding keeps the v1 codes
        assert [codes_mod.normalise(h.code) for h in reg.households[:2]] == old["codes"]
        assert reg.volunteers[0].token == old["token"]
        led.use_staff_token(led.new_staff_token())       # the table version 2 added
    with Ledger.open(db_url) as led:                     # opening again changes nothing
        assert led.status()["batches"][0]["delivered"] == 2


def test_version_3_file_lists_become_rows_and_a_purged_batch_keeps_none(db_url):
    """Version 3 kept each batch's written files as one JSON text in ``meta``."""
    led = Ledger.open(db_url, create=True)
    kept = register(led, PEOPLE[:2]).batch_id
    purged = register(led, PEOPLE[:2], info=BatchInfo("另一批")).batch_id
    led.purge(purged)
    with led.transaction(write=True) as conn:            # back to what version 3 wrote
        S.written_files.drop(conn)
        conn.execute(S.meta.update().where(S.meta.c.key == "schema_version").values(value="3"))
        lists = {kept: {"/srv/out": ["letters.docx", "letters/0001-周一鸣.docx", "letters.docx"],
                        "/srv/again": ["slips.pdf"]},
                 purged: {"/srv/other": ["letters/0001-周一鸣.docx"]},
                 999: {"/srv/gone": ["slips.pdf"]}}          # a batch no longer there
        conn.execute(S.meta.insert(), [{"key": f"batch:{b}:files", "value": json.dumps(v)}
                                       for b, v in lists.items()])
    led.close()
    with Ledger.open(db_url) as led:
        assert led.written_files(kept) == {"/srv/out": ["letters.docx", "letters/0001-周一鸣.docx"],
                                           "/srv/again": ["slips.pdf"]}
        assert led.written_files(purged) == {}
        assert led.written_in(kept, "/srv/again") == ["slips.pdf"]
        with led.transaction() as conn:
            assert S.read_version(conn) == 4
            assert not conn.execute(select(S.meta.c.key)
                                    .where(S.meta.c.key.like("%:files"))).all()


def test_written_files_are_claimed_a_chunk_at_a_time_and_go_with_a_purge(ledger, monkeypatch):
    from letterpress.ledger import written

    monkeypatch.setattr(written, "CHUNK", 3)
    batch = register(ledger).batch_id
    on_disk = {"a", "b", "c", "d", "e", "f", "g"}
    ledger.claim_files(batch, "/srv/out", iter("abcdefg"), on_disk.__contains__)
    ledger.claim_files(batch, "/srv/out", iter("cdh"), on_disk.__contains__)
    assert ledger.written_in(batch, "/srv/out") == list("abcdefgh")
    on_disk -= {"a", "g"}                                  # gone since: dropped
    ledger.claim_files(batch, "/srv/out", iter("i"), on_disk.__contains__)
    ledger.claim_files(batch, "/srv/two", iter("a"), on_disk.__contains__)
    assert ledger.written_files(batch) == {"/srv/out": list("bcdefi"), "/srv/two": ["a"]}
    ledger.purge(batch)
    assert ledger.written_files(batch) == {}


def test_failed_migration_changes_nothing(db_url, monkeypatch):
    _build_v1(db_url)

    def broken(conn):
        S._v1_to_v2(conn)
        raise RuntimeError("power cut")

    monkeypatch.setitem(S.MIGRATIONS, 1, broken)
    with pytest.raises(RuntimeError):
        Ledger.open(db_url)
    monkeypatch.undo()
    engine = create_engine(S.parse_url(db_url))
    with engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'"))
        assert version.scalar() == "1"
        columns = [c["name"] for c in inspect(conn).get_columns("events")]
        assert "source" not in columns
    engine.dispose()
    with Ledger.open(db_url) as led:
        assert led.status()["batches"][0]["delivered"] == 1


# --- reading: batches and status ------------------------------------------------------------------

def test_status_shape_and_counts(ledger):
    reg = register(ledger)
    c = codes_by_key(reg)
    ledger.record(c["1"], "delivered", "林小舟")
    ledger.record(c["2"], "refused", "林小舟")
    ledger.record(c["3"], "proxy", "高山青", note="女儿代收")
    ledger.record(c["4"], "hospital", "站长")
    register(ledger, PEOPLE[:5])                          # 6 withdrawn
    data = ledger.status()
    assert list(data) == ["batches"] and len(data["batches"]) == 1
    b = data["batches"][0]
    assert list(b) == ["title", "date", "households", "delivered", "failed", "outstanding",
                       "withdrawn", "volunteers"]
    assert (b["title"], b["date"]) == (BATCH.title, "2020-02-24")
    assert (b["households"], b["delivered"], b["failed"], b["outstanding"], b["withdrawn"]) == \
        (6, 2, 2, 1, 1)
    assert b["households"] == b["delivered"] + b["failed"] + b["outstanding"] + b["withdrawn"]
    assert b["volunteers"] == [
        {"name": "林小舟", "households": 2, "delivered": 1, "failed": 1, "outstanding": 0},
        {"name": "高山青", "households": 2, "delivered": 1, "failed": 0, "outstanding": 1},
        {"name": "", "households": 1, "delivered": 0, "failed": 1, "outstanding": 0},
    ]
    assert ledger.status(BATCH.title) == data
    assert json.loads(json.dumps(data)) == data


def test_find_batch(ledger):
    with pytest.raises(LedgerError) as exc:
        ledger.find_batch(None)
    assert exc.value.code == "unknown_batch"
    one = register(ledger)
    assert ledger.find_batch(None).id == one.batch_id
    register(ledger, PEOPLE[:2], info=BatchInfo("2020-03-01 第二轮"))
    with pytest.raises(LedgerError) as exc:
        ledger.find_batch(None)
    assert exc.value.code == "batch_required"
    assert BATCH.title in str(exc.value) and "2020-03-01 第二轮" in str(exc.value)
    with pytest.raises(LedgerError) as exc:
        ledger.find_batch("没有这一批")
    assert exc.value.code == "unknown_batch" and "2020-03-01 第二轮" in str(exc.value)
    with pytest.raises(LedgerError) as exc:
        ledger.status("没有这一批")
    assert exc.value.code == "unknown_batch"
    assert [b.title for b in ledger.batches()] == [BATCH.title, "2020-03-01 第二轮"]
    assert len(ledger.status()["batches"]) == 2


def test_household_by_code(ledger):
    reg = register(ledger)
    code = reg.households[2].code
    for typed in (code, code.lower(), code.replace("-", ""), f" {code} "):
        view = ledger.household_by_code(typed)
        assert (view.key, view.name, view.code, view.state) == ("3", "郑三友", code, "outstanding")
    assert (view.compound, view.building, view.phone) == ("示例小区", "3栋", "13800000003")
    for bad, expected in (("nonsense", "unknown_code"), (codes_mod.new_code(), "unknown_code")):
        with pytest.raises(RecordError) as exc:
            ledger.household_by_code(bad)
        assert exc.value.code == expected


# --- staff work ---------------------------------------------------------------------------------

def test_staff_tokens_are_single_use_and_expire(ledger):
    token = ledger.new_staff_token()
    assert TOKEN_RE.match(token) and len(token) >= 40
    ledger.use_staff_token(token)
    expired = ledger.new_staff_token(ttl=dt.timedelta(seconds=-1))
    for bad in (token, expired, "made-up"):
        with pytest.raises(RecordError) as exc:
            ledger.use_staff_token(bad)
        assert exc.value.code == "not_authorised"
    with ledger.transaction() as conn:
        stored = [str(x) for row in conn.execute(select(S.staff_tokens)) for x in row]
    assert not any(token in s for s in stored)


def test_reissue_codes_revokes_the_old_ones(ledger):
    reg = register(ledger)
    old = codes_by_key(reg)
    ledger.record(old["2"], "not-home", "林小舟")
    new = ledger.reissue_codes(reg.batch_id, ["2", "4"])
    assert set(new) == {"2", "4"} and new["2"] != old["2"]
    with pytest.raises(RecordError) as exc:
        ledger.record(old["2"], "delivered", "林小舟")
    assert exc.value.code == "revoked_code"
    res = ledger.record(new["2"], "delivered", "林小舟")
    assert res.status == "created" and len(ledger.events_for(res.household.id)) == 2
    assert codes_by_key(register(ledger))["2"] == new["2"]           # a rebuild keeps the new code
    with pytest.raises(LedgerError) as exc:
        ledger.reissue_codes(reg.batch_id, ["99"])
    assert exc.value.code == "unknown_household"


def test_purge_removes_personal_data_and_keeps_counts(ledger):
    reg = register(ledger)
    c = codes_by_key(reg)
    ledger.record(c["1"], "proxy", "林小舟", note="邻居吴阿姨代收")
    ledger.record(c["3"], "not-home", "高山青")
    before = ledger.status()
    assert ledger.purge(reg.batch_id) == 6
    after = ledger.status()["batches"][0]
    counts = ("households", "delivered", "failed", "outstanding", "withdrawn")
    assert [after[k] for k in counts] == [before["batches"][0][k] for k in counts]
    assert [v["households"] for v in after["volunteers"]] == [3, 2, 1]
    assert [v["name"] for v in after["volunteers"]] == ["volunteer 1", "volunteer 2", ""]
    with ledger.transaction() as conn:
        dump = " ".join(str(x) for t in (S.households, S.events, S.volunteers)
                        for row in conn.execute(select(t)) for x in row)
    for secret in ("周一鸣", "郑三友", "林小舟", "高山青", "13800000001", "示例路", "独居老人",
                   "吴阿姨", "上午在家"):
        assert secret not in dump
    for v in reg.volunteers:
        with pytest.raises(RecordError):
            ledger.authenticate(v.token)
    with pytest.raises(RecordError) as exc:
        ledger.record(c["2"], "delivered", "林小舟")
    assert exc.value.code == "revoked_code"
    with pytest.raises(LedgerError) as exc:
        register(ledger)
    assert exc.value.code == "batch_purged"
    assert ledger.purge(reg.batch_id) == 6                          # twice is harmless


def test_a_round_read_in_chunks_is_the_same(ledger, monkeypatch):
    from letterpress.ledger import views as V

    reg = register(ledger, PEOPLE)
    c = codes_by_key(reg)
    ledger.record(c["6"], "not-home", "林小舟")
    ledger.record(c["1"], "delivered", "林小舟")
    whole = ledger.round(reg.batch_id, "林小舟")
    monkeypatch.setattr(V, "ROUND_CHUNK", 2)
    assert ledger.round(reg.batch_id, "林小舟") == whole
    assert [h.state for h in whole] == ["delivered", "outstanding", "failed"]
    batch, households = ledger.round_page(reg.batch_id, "林小舟")
    assert batch.title == BATCH.title and households == whole


def test_a_volunteers_round_is_theirs_only_in_walking_order(ledger):
    reg = register(ledger, PEOPLE)
    batch_id = reg.batch_id
    codes = {h.recipient.id: h.code for h in reg.households}
    ledger.record(codes["2"], "delivered", "林小舟", source="list")
    ledger.record(codes["6"], "not-home", "林小舟")
    mine = ledger.round(batch_id, "林小舟")
    assert [(h.key, h.state) for h in mine] == [("1", "outstanding"), ("2", "delivered"),
                                                ("6", "failed")]
    assert [h.seq for h in mine] == sorted(h.seq for h in mine)
    assert mine[2].last_outcome == "not-home" and mine[0].code == codes["1"]
    assert ledger.events_for(mine[1].id)[0].source == "list"
    assert [h.key for h in ledger.round(batch_id, "高山青")] == ["3", "5"]
    assert ledger.round(batch_id, "nobody") == []
    register(ledger, [p for p in PEOPLE if p[0] != "6"])    # withdrawn: off the round
    assert [h.key for h in ledger.round(batch_id, "林小舟")] == ["1", "2"]


def test_version_2_ledger_gets_the_round_index(db_url):
    with Ledger.open(db_url, create=True) as led:
        register(led, PEOPLE)
        with led.transaction(write=True) as conn:
            conn.execute(text("DROP INDEX ix_households_round"))
            S.written_files.drop(conn)                      # version 4's
            conn.execute(S.meta.update().where(S.meta.c.key == "schema_version").values(value="2"))
    with Ledger.open(db_url) as led:
        with led.transaction() as conn:
            assert S.read_version(conn) == 4
            assert "ix_households_round" in {
                ix["name"] for ix in inspect(conn).get_indexes("households")}
        assert led.status()["batches"][0]["households"] == len(PEOPLE)


def test_the_round_query_uses_its_index(tmp_path):
    from letterpress.ledger import views as V

    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", create=True) as led:
        reg = register(led, PEOPLE)
        plans = []
        with led.transaction() as conn:
            first = V.round_select(reg.batch_id, "林小舟")
            ids = [r.id for r in conn.execute(first)]
            for stmt in (first, *V.round_statements(ids)):
                sql = str(stmt.compile(compile_kwargs={"literal_binds": True}))
                plans.append(" | ".join(str(r[-1]) for r in conn.execute(
                    text("EXPLAIN QUERY PLAN " + sql))))
    assert len(ids) == 3 and "USING INDEX ix_households_round" in plans[0], plans
    assert all(not re.search(r"(^|\| )SCAN ", p) for p in plans), plans


def test_states_counted_by_the_database_follow_derive_state(ledger):
    """status, the dashboard's per-compound counts and the lists by state come from SQL:
    they equal what derive_state makes of every household's events, through undos,
    duplicates, a redelivery after a failure and withdrawn households."""
    import random

    people = tuple((str(k), f"居民{k}", ("林小舟", "高山青", "", "王磊")[k % 4])
                   for k in range(1, 41))
    reg = register(ledger, people)
    c = codes_by_key(reg)
    rnd = random.Random(7)
    outcomes = ("delivered", "not-home", "refused", "proxy", "hospital", "other")
    for key in map(str, range(1, 41)):
        for _ in range(rnd.randint(0, 3)):
            res = ledger.record(c[key], rnd.choice(outcomes), "林小舟", note="邻居代收")
            if rnd.random() < 0.3:
                ledger.undo(res.event_id, "扫错了", "站长")
    register(ledger, people[:34])                        # 35..40 withdrawn
    batch = ledger.find_batch(BATCH.title)
    views = list(ledger.household_rows(batch.id))
    entry = ledger.status()["batches"][0]
    for state in ("delivered", "failed", "outstanding", "withdrawn"):
        assert entry[state] == sum(v.state == state for v in views), state
    expected: dict = {}
    for v in views:
        if v.state != "withdrawn":
            e = expected.setdefault(v.volunteer, {"name": v.volunteer, "households": 0,
                                                  "delivered": 0, "failed": 0, "outstanding": 0})
            e["households"] += 1
            e[v.state] += 1
    assert entry["volunteers"] == [e for n, e in expected.items() if n] + \
        [e for n, e in expected.items() if not n]
    assert entry["failed"] and entry["delivered"] and entry["outstanding"]
    assert ledger.households_by_id([views[3].id, views[0].id]) == [views[3], views[0]]


def test_codes_are_made_and_written_a_chunk_at_a_time(ledger, monkeypatch):
    """A district's new codes are never all pending at once; each household still gets one
    of its own, in the order drawn (not sorted), and keeps it the next time."""
    register_mod = importlib.import_module("letterpress.ledger.register")
    monkeypatch.setattr(register_mod, "CHUNK", 3)
    drawn: list = []
    real = register_mod.fresh_codes

    def counted(conn, n):
        drawn.append(n)
        return real(conn, n)

    monkeypatch.setattr(register_mod, "fresh_codes", counted)
    people = [(str(k), f"示例{k}", "林小舟") for k in range(1, 12)]
    first = register(ledger, people)
    assert drawn == [3, 3, 3, 2]
    codes = [h.code for h in first.households]
    assert len(set(codes)) == 11 and all(codes_mod.canonical(c) for c in codes)
    again = register(ledger, people + [("12", "示例12", "林小舟")])
    assert [h.code for h in again.households][:11] == codes and again.new == 1
    assert drawn == [3, 3, 3, 2, 1]
    ledger.reissue_codes(again.batch_id, ["4"])                 # a code reissued by staff
    third = register(ledger, people)
    assert third.households[3].code not in codes and third.kept == 11


def test_fresh_codes_keep_the_order_drawn(ledger, monkeypatch):
    register_mod = importlib.import_module("letterpress.ledger.register")

    order = iter(["ZZZZZZZZZZ", "0000000000", "MMMMMMMMMM"])
    monkeypatch.setattr(codes_mod, "new_canonical",
                        lambda: (lambda d: d + codes_mod.check_symbol(d))(next(order)))
    with ledger.transaction(write=True) as conn:
        made = register_mod.fresh_codes(conn, 3)
    assert [c[:10] for c in made] == ["ZZZZZZZZZZ", "0000000000", "MMMMMMMMMM"]
