"""Slip pages kept between builds: unchanged pages are put back, not drawn again, and the
file is what drawing every page (with the same character order) gives."""
from __future__ import annotations

import dataclasses
import shutil

import pytest
from pdftools import decoded_pages, page_texts
from reportlab import rl_config
from test_slips import INFO_ZH, make_households

from letterpress.pipeline import outputs
from letterpress.slips import fonts, pagecache, slips
from letterpress.slips.pagecache import PageCache

RARE = "龘"                     # in no row before, so it gets a new code in its subset


@pytest.fixture(scope="module")
def cjk():
    from conftest import require

    choice = fonts.find_font(None)
    require(choice.embedded, "no CJK TrueType font: install fonts-wqy-microhei")
    return choice


@pytest.fixture
def invariant(monkeypatch):
    monkeypatch.setattr(rl_config, "invariant", 1)     # no dates or random ids in the file


def write(households, path, cjk, cache=None, **kw):
    return slips.write_slips(households, path, info=INFO_ZH, total=len(households), fonts=cjk,
                             package="肉制品、蔬菜", cache=cache, **kw)


def changed(households, index, **fields):
    out = list(households)
    h = out[index]
    out[index] = dataclasses.replace(h, recipient=dataclasses.replace(h.recipient, **fields))
    return out


def streams(path):
    import pypdf

    return [page.get_contents().get_data() for page in pypdf.PdfReader(str(path)).pages]


@pytest.fixture(scope="module")
def many():
    return make_households(120)          # 15 pages of 8


def test_a_rebuild_draws_only_the_pages_of_changed_households(tmp_path, cjk, many, invariant):
    first = PageCache(tmp_path / "cache")
    pages = write(many, tmp_path / "first.pdf", cjk, first)
    assert (pages, first.drawn, first.reused) == (15, 15, 0)
    shutil.copytree(tmp_path / "cache", tmp_path / "fresh")
    again = changed(many, 20, address="沙湖小区9栋2单元608室")          # page 3
    again = changed(again, 101, notes="请先打电话，Bring the blue bag")  # page 13
    reused = PageCache(tmp_path / "cache")
    assert write(again, tmp_path / "again.pdf", cjk, reused) == 15
    assert (reused.drawn, reused.reused) == (2, 13)

    redrawn = PageCache(tmp_path / "fresh", reuse=False)
    write(again, tmp_path / "redrawn.pdf", cjk, redrawn)
    assert (redrawn.drawn, redrawn.reused) == (15, 0)
    assert streams(tmp_path / "again.pdf") == streams(tmp_path / "redrawn.pdf")
    assert (tmp_path / "again.pdf").read_bytes() == (tmp_path / "redrawn.pdf").read_bytes()

    texts = ["".join(text.split()) for text in page_texts(tmp_path / "again.pdf")]
    assert "沙湖小区9栋2单元608室" in texts[2] and "Bringthebluebag" in texts[12]
    assert many[20].address not in texts[2]
    codes = decoded_pages(tmp_path / "again.pdf")
    for number in (0, 1, 7, 14):                      # pages put back as they were
        assert sorted(codes[number]) == sorted(h.url for h in many[number * 8:number * 8 + 8])

    third = PageCache(tmp_path / "cache")             # and again: nothing changed at all
    write(again, tmp_path / "third.pdf", cjk, third)
    assert (third.drawn, third.reused) == (0, 15)
    assert (tmp_path / "third.pdf").read_bytes() == (tmp_path / "again.pdf").read_bytes()


def test_a_new_character_leaves_the_other_pages_reused(tmp_path, cjk, many, invariant):
    if ord(RARE) not in fonts._load(str(cjk.path), cjk.subfont_index).face.charToGlyph:
        pytest.skip(f"the font has no {RARE}")
    write(many, tmp_path / "first.pdf", cjk, PageCache(tmp_path / "cache"))
    shutil.copytree(tmp_path / "cache", tmp_path / "fresh")
    again = changed(many, 50, name="欧阳" + RARE)                      # page 7
    reused = PageCache(tmp_path / "cache")
    write(again, tmp_path / "again.pdf", cjk, reused)
    assert (reused.drawn, reused.reused) == (1, 14)
    write(again, tmp_path / "redrawn.pdf", cjk, PageCache(tmp_path / "fresh", reuse=False))
    assert (tmp_path / "again.pdf").read_bytes() == (tmp_path / "redrawn.pdf").read_bytes()
    assert "欧阳" + RARE in page_texts(tmp_path / "again.pdf")[6]
    # The next build keeps the new character's code: every page is put back.
    third = PageCache(tmp_path / "cache")
    write(again, tmp_path / "third.pdf", cjk, third)
    assert (third.drawn, third.reused) == (0, 15)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped page", "empty"])
def test_a_damaged_cache_means_drawing(tmp_path, cjk, many, invariant, damage):
    write(many, tmp_path / "first.pdf", cjk, PageCache(tmp_path / "cache"))
    shutil.copytree(tmp_path / "cache", tmp_path / "fresh")
    path = tmp_path / "cache" / pagecache.FILE.name
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"\x00not a cache" * 100)
    elif damage == "flipped page":
        data[200] ^= 0xFF          # inside the first page's stream
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    damaged = PageCache(tmp_path / "cache")
    write(many, tmp_path / "again.pdf", cjk, damaged)
    if damage == "flipped page":
        assert (damaged.drawn, damaged.reused) == (1, 14)
        write(many, tmp_path / "redrawn.pdf", cjk, PageCache(tmp_path / "fresh", reuse=False))
        assert (tmp_path / "again.pdf").read_bytes() == (tmp_path / "redrawn.pdf").read_bytes()
    else:
        assert (damaged.drawn, damaged.reused) == (15, 0)
    codes = decoded_pages(tmp_path / "again.pdf")
    assert sorted(u for page in codes for u in page) == sorted(h.url for h in many)
    healed = PageCache(tmp_path / "cache")       # the write made a whole cache again
    write(many, tmp_path / "third.pdf", cjk, healed)
    assert (healed.drawn, healed.reused) == (0, 15)


def test_other_settings_or_slots_draw_again(tmp_path, cjk, many):
    write(many, tmp_path / "first.pdf", cjk, PageCache(tmp_path / "cache"))
    other = PageCache(tmp_path / "cache")
    write(many, tmp_path / "fields.pdf", cjk, other, slip_fields=["phone"])
    assert other.reused == 0
    write(many, tmp_path / "first.pdf", cjk, PageCache(tmp_path / "cache"))
    sheets = PageCache(tmp_path / "cache")
    pages = write(many, tmp_path / "sheets.pdf", cjk, sheets, new_sheet_per_volunteer=True)
    assert pages == 16 and sheets.reused == 3        # 30 slips each: pages 1-3 stay
    codes = decoded_pages(tmp_path / "sheets.pdf")
    assert sorted(u for page in codes for u in page) == sorted(h.url for h in many)


def test_without_a_cache_nothing_changes(tmp_path, cjk, many, invariant):
    write(many[:30], tmp_path / "plain.pdf", cjk)
    assert not (tmp_path / ".letterpress").exists()
    assert write(many[:30], tmp_path / "plain2.pdf", cjk) == 4
    assert (tmp_path / "plain.pdf").read_bytes() == (tmp_path / "plain2.pdf").read_bytes()


def test_the_cache_is_private_and_purge_knows_it(tmp_path, cjk, many):
    write(many[:16], tmp_path / "s.pdf", cjk, PageCache(tmp_path / ".letterpress"))
    path = tmp_path / outputs.SLIP_CACHE
    assert path.is_file() and (path.stat().st_mode & 0o077) == 0
    assert (path.parent.stat().st_mode & 0o077) == 0
    assert outputs.SLIP_CACHE in outputs.planned_files([], [], pdf=False)
    assert outputs.ours_in(".letterpress")(path.name)


def test_build_keeps_the_slip_pages_of_unchanged_households(tmp_path):
    from test_reuse import _build, _rows

    rows = _rows(40)                                  # 5 pages of 8
    out = tmp_path / "out"
    _build(tmp_path, rows, out, 1)
    before = streams(out / "slips.pdf")
    assert (out / outputs.SLIP_CACHE).is_file()
    rows[30][8] = "下午在家"                           # one household's note
    _build(tmp_path, rows, out, 1)
    after = streams(out / "slips.pdf")
    texts = ["".join(text.split()) for text in page_texts(out / "slips.pdf")]
    assert [a == b for a, b in zip(before, after)] == ["下午在家" not in t for t in texts]
    assert sum("下午在家" in t for t in texts) == 1 and len(after) == 5
