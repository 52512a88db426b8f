"""How much damage a slip's QR code takes before it stops reading, for every layout.

    python benchmarks/slip_damage.py

Each layout's slips are made for 8 fictional households (fixed codes) with a 30-character
https base URL (the longest the design promises to fit QR version 3), rendered
with pypdfium2 at 300 dpi, damaged cut apart (a phone photographs one slip on a package), damaged with Pillow
(``tests/damage.py``, seeded) and read with zxing-cpp. First the two standard cases the tests require
(``DOOR``: a phone photo at about 110 dpi, tilted 12°, keystoned, blurred,
faded to 45 % ink with grain, hard JPEG; ``THERMAL``: a 203 dpi thermal print
with ink spread, photographed the same way), then, one at a time, each kind of
damage is made worse on top of ``DOOR`` (or ``THERMAL`` for ink spread) until
the first code of the page fails: the last level where all codes still read is
the margin printed.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import damage as D  # noqa: E402

BASE = "https://lp.qingyuzui-wuhan.org"      # 30 characters
SOURCE_DPI = 300

#: (what, field, levels from mild to severe, format, start from THERMAL?)
LADDERS = (
    ("photo resolution (dpi)", "dpi", [110, 95, 85, 75, 65, 58, 52, 46, 40], "{:g}", False),
    ("blur radius (px of the photo)", "blur", [0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.3, 2.6, 3.0],
     "{:g}", False),
    ("tilt (degrees)", "tilt", [12, 20, 30, 45], "{:g}", False),
    ("keystone (far edge shorter by)", "keystone", [0.12, 0.2, 0.3, 0.4, 0.5], "{:.0%}", False),
    ("ink left", "ink", [0.45, 0.35, 0.28, 0.22, 0.17, 0.13, 0.1], "{:.0%}", False),
    ("grain (std. dev., of 255)", "noise", [14, 20, 28, 36, 45, 55, 70], "{:g}", False),
    ("JPEG quality", "jpeg", [20, 12, 8, 5, 3, 2, 1], "{:g}", False),
    ("thermal ink spread (px at 203 dpi)", "spread", [1, 2, 3, 4, 5], "{:g}", True),
)


def households(n: int = 8):
    sys.path.insert(0, str(HERE.parent / "tests"))
    import random

    from test_slips import make_households

    from letterpress.ledger import codes
    from letterpress.models import Household

    rnd = random.Random(2020)       # the same codes every run, so runs compare
    out = []
    for h in make_households(n):
        data = "".join(rnd.choice(codes.ALPHABET) for _ in range(10))
        code = f"{data[:5]}-{data[5:]}-{codes.check_symbol(data)}"
        out.append(Household(h.seq, h.recipient, code, codes.url_for(BASE, code)))
    return out


def pages_of(layout: str, hs, tmp: Path):
    from test_slips import INFO_ZH

    from letterpress.slips import fonts, layouts, slips

    path = tmp / f"slips-{layout}.pdf"
    slips.write_slips(hs, path, info=INFO_ZH, total=len(hs), layout=layout,
                      fonts=fonts.find_font(None), package="肉制品、蔬菜")
    return D.cut(D.render(path, SOURCE_DPI), layouts.LAYOUTS[layout], SOURCE_DPI)


def all_read(pages, damage: D.Damage, want: set) -> bool:
    return want <= set(D.read_codes(pages, damage, SOURCE_DPI))


def margin(pages, want: set, field: str, levels, thermal: bool):
    """The worst level at which every code still reads (None: not even the first)."""
    base = D.THERMAL if thermal else D.DOOR
    last = None
    for level in levels:
        if not all_read(pages, base.worse(**{field: level}), want):
            break
        last = level
    return last


def main() -> int:
    from letterpress.slips import layouts

    hs = households()
    want = {h.url for h in hs}
    print(f"payload: {hs[0].url} ({len(hs[0].url)} characters)")
    failed = False
    with tempfile.TemporaryDirectory(prefix="lp-damage-") as tmp:
        rows = []
        for name in sorted(layouts.LAYOUTS):
            pages = pages_of(name, hs, Path(tmp))
            door = all_read(pages, D.DOOR, want)
            thermal = all_read(pages, D.THERMAL, want)
            failed |= not (door and thermal)
            margins = [margin(pages, want, field, levels, th)
                       for _, field, levels, _, th in LADDERS]
            rows.append((name, door, thermal, margins))
    print("\n| damage (one at a time, on top of the standard case) | "
          + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    print("| standard door photo reads | " + " | ".join("yes" if r[1] else "NO" for r in rows)
          + " |")
    print("| standard thermal label reads | " + " | ".join("yes" if r[2] else "NO"
                                                         for r in rows) + " |")
    for i, (what, _, levels, fmt, _) in enumerate(LADDERS):
        cells = []
        for r in rows:
            m = r[3][i]
            cell = "-" if m is None else fmt.format(m)
            if m is not None and m == levels[-1]:
                cell += " (all tried)"
            cells.append(cell)
        print(f"| {what} | " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
