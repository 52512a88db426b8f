"""Ledger fixtures shared by the ledger tests (and any test that needs a ledger).

``db_url`` is parametrised over SQLite (a file under ``tmp_path``) and
PostgreSQL. The PostgreSQL case uses the URL in ``LETTERPRESS_TEST_PG`` (for
example ``postgresql+psycopg://postgres@127.0.0.1:55432/letterpress_test``)
and gives each test a schema of its own, dropped afterwards. Without that
variable it skips, and under ``LETTERPRESS_REQUIRE_ALL=1`` it fails.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Iterable, Optional, Sequence, Tuple

import pytest
from conftest import require
from sqlalchemy import create_engine, text

from letterpress.ledger import Ledger
from letterpress.ledger.schema import parse_url
from letterpress.models import BatchInfo, Household, Recipient

PG_ENV = "LETTERPRESS_TEST_PG"
BASE_URL = "http://192.0.2.10:8470"
BATCH = BatchInfo(title="2020-02-24 示例社区 慰问物资", org="示例社区志愿服务队",
                  date=dt.date(2020, 2, 24), lang="zh")

# Fictional households: (id, name, volunteer).
PEOPLE: Tuple[Tuple[str, str, str], ...] = (
    ("1", "周一鸣", "林小舟"),
    ("2", "吴二娘", "林小舟"),
    ("3", "郑三友", "高山青"),
    ("4", "冯四海", ""),
    ("5", "陈五月", "高山青"),
    ("6", "褚六合", "林小舟"),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterable[str]:
    """A URL of an empty database (no ledger yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = os.environ.get(PG_ENV)
    require(bool(base), f"PostgreSQL: set {PG_ENV} to a SQLAlchemy URL of a test database")
    url = parse_url(base)
    schema = "lp_test_" + secrets.token_hex(6)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def ledger(db_url) -> Iterable[Ledger]:
    """A new, empty ledger on each backend."""
    led = Ledger.open(db_url, create=True)
    try:
        yield led
    finally:
        led.close()


def make_households(people: Sequence[Tuple[str, str, str]] = PEOPLE, *,
                    phone_prefix: str = "138000000") -> list:
    """Households numbered in list order from ``(id, name, volunteer)`` triples."""
    out = []
    for seq, (key, name, volunteer) in enumerate(people, start=1):
        r = Recipient(row=seq + 1, id=key, name=name, honorific="老人家",
                      address=f"示例路{seq}号{seq}栋{seq}01室", compound="示例小区",
                      building=f"{seq}栋", room=f"{seq}01", phone=f"{phone_prefix}{seq:02d}",
                      category="独居老人", volunteer=volunteer, package="蔬菜", notes="上午在家")
        out.append(Household(seq=seq, recipient=r))
    return out


def register(led: Ledger, people: Sequence[Tuple[str, str, str]] = PEOPLE,
             info: BatchInfo = BATCH, base_url: str = BASE_URL):
    """Register ``people`` as the batch ``info``; returns the Registration."""
    return led.register_batch(info, make_households(people), base_url)


def codes_by_key(reg) -> dict:
    return {h.id: h.code for h in reg.households}


def count_events(led: Ledger, household_id: Optional[int] = None) -> int:
    from sqlalchemy import func, select

    from letterpress.ledger.schema import events
    query = select(func.count()).select_from(events)
    if household_id is not None:
        query = query.where(events.c.household_id == household_id)
    with led.transaction() as conn:
        return conn.execute(query).scalar_one()
