"""Slip codes read after the damage they meet between the printer and a phone camera.

Every layout's slips are rendered (pypdfium2), cut apart, damaged with Pillow (seeded, see
``damage.py``) and decoded with zxing-cpp: every household's code must read.
The margins beyond these cases are measured by ``benchmarks/slip_damage.py``.
"""
from __future__ import annotations

import importlib.util

import damage as D
import pytest
from conftest import require
from test_slips import INFO_ZH, make_households

from letterpress.ledger import codes
from letterpress.models import Household
from letterpress.slips import fonts, layouts, qr, slips

BASE = "https://lp.qingyuzui-wuhan.org"      # 30 characters: the longest promised to fit
SOURCE_DPI = 300
_MM = 72 / 25.4


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    for module in ("pypdfium2", "zxingcpp"):
        require(importlib.util.find_spec(module) is not None, f"{module} is not installed")
    choice = fonts.find_font(None)
    require(choice.embedded, "no CJK TrueType font: install fonts-wqy-microhei")
    hs = [Household(h.seq, h.recipient, h.code, codes.url_for(BASE, h.code))
          for h in make_households(8)]
    assert len(BASE) == 30 and all(len(h.url) == 44 for h in hs)
    tmp = tmp_path_factory.mktemp("damage")
    out = {}
    for name in sorted(layouts.LAYOUTS):
        path = tmp / f"{name}.pdf"
        slips.write_slips(hs, path, info=INFO_ZH, total=len(hs), layout=name, fonts=choice,
                          package="肉制品、蔬菜")
        out[name] = D.render(path, SOURCE_DPI)
    return hs, out


def _slips(pages, layout):
    return D.cut(pages[layout], layouts.LAYOUTS[layout], SOURCE_DPI)


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
@pytest.mark.parametrize("case", ["door", "thermal"])
def test_every_code_reads_after_the_damage_of_a_round(rendered, layout, case):
    hs, pages = rendered
    damage = D.DOOR if case == "door" else D.THERMAL
    found = D.read_codes(_slips(pages, layout), damage, SOURCE_DPI)
    assert sorted(found) == sorted(h.url for h in hs)


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_each_kind_of_damage_alone(rendered, layout):
    hs, pages = rendered
    want = sorted(h.url for h in hs)
    cut = _slips(pages, layout)
    for damage in (D.Damage(dpi=110), D.Damage(blur=1.2), D.Damage(tilt=12),
                   D.Damage(keystone=0.2), D.Damage(jpeg=8), D.Damage(ink=0.45, noise=14),
                   D.Damage(thermal=True, spread=2)):
        assert sorted(D.read_codes(cut, damage, SOURCE_DPI)) == want, damage


def test_damage_is_seeded():
    from PIL import Image

    page = Image.new("L", (300, 300), 255)
    one = D.apply(page, D.DOOR, SOURCE_DPI).tobytes()
    assert D.apply(page, D.DOOR, SOURCE_DPI).tobytes() == one
    assert D.apply(page, D.DOOR.worse(seed=7), SOURCE_DPI).tobytes() != one


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_quiet_zone_stays_clear_of_cut_lines_and_text(rendered, layout):
    """Nothing is drawn in the 4-module margin around a code, and the margin keeps
    1.5 mm from the slip's edges, where the cuts go."""
    hs, pages = rendered
    spec = layouts.LAYOUTS[layout]
    fs = fonts.register(fonts.find_font(None))
    g = slips.geometry(spec.slip_width, spec.slip_height, spec.padding, fs.code, fs.code_mono)
    n = len(qr.matrix(hs[0].url))
    module = g.qr_size / (n + 2 * qr.QUIET)
    assert module >= 1.0 * _MM if layout != "a4-8" else module >= 1.05 * _MM
    page = pages[layout][0]
    scale = SOURCE_DPI / 72
    for slot in range(min(spec.per_page, len(hs))):
        x, y, w, h = spec.box(slot)
        left, bottom = x + g.qr_x, y + g.qr_y
        right, top = left + g.qr_size, bottom + g.qr_size
        assert left - x >= 1.5 * _MM - 0.01 and x + w - right >= 1.5 * _MM - 0.01
        assert bottom - y >= 1.5 * _MM - 0.01 and y + h - top >= 1.5 * _MM - 0.01
        inner = (left + qr.QUIET * module, bottom + qr.QUIET * module,
                 right - qr.QUIET * module, top - qr.QUIET * module)
        # Pixels of the quiet zone ring, 1 px in from each boundary (anti-aliasing).
        px = lambda v: v * scale                                   # noqa: E731
        py = lambda v: (spec.page_height - v) * scale              # noqa: E731
        outer_box = (int(px(left)) + 1, int(py(top)) + 1, int(px(right)) - 1,
                     int(py(bottom)) - 1)
        inner_box = (int(px(inner[0])) - 1, int(py(inner[3])) - 1, int(px(inner[2])) + 1,
                     int(py(inner[1])) + 1)
        ring = page.crop(outer_box)
        ox, oy = outer_box[0], outer_box[1]
        dark = [(cx, cy) for cy in range(ring.height) for cx in range(ring.width)
                if ring.getpixel((cx, cy)) < 235 and not (
                    inner_box[0] <= cx + ox <= inner_box[2]
                    and inner_box[1] <= cy + oy <= inner_box[3])]
        assert not dark, f"{layout} slot {slot}: ink in the quiet zone at {dark[:5]}"
