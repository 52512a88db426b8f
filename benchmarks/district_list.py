"""A made-up district's recipient list: streets, communities, compounds, buildings, volunteers.

    python benchmarks/district_list.py N OUT.csv [--volunteers 1000] [--changed 0.01]

Like a 区 of a large city: a few hundred compounds (小区, 宿舍, 新村 ...) of up to
thirty buildings, up to six units and eighteen floors each, households spread over
them without two at one door; one volunteer for about every hundred households
of one community, in delivery order. Names come from :mod:`fictional` (no real
person). Seeded, so runs compare; ``changed(rows, share)`` alters a share of the
rows (a new phone number, a note, a moved household) the way a corrected list does.
"""
from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fictional  # noqa: E402

STREETS = ("积玉桥", "杨园", "徐家棚", "中华路", "黄鹤楼", "紫阳", "首义路", "中南路", "水果湖",
           "珞珈山", "石洞", "粮道街", "南湖", "白沙洲")
PLACES = ("沙湖", "电车", "九天", "和平", "东亭", "翠柳", "长春", "新河", "梅苑", "宝通", "丁字桥",
          "傅家坡", "大东门", "千家街", "武车", "铁机", "付家", "湖光", "中山", "友谊", "临江",
          "滨江", "八一", "紫荆", "晒湖", "洪山", "车辆厂", "邮电", "电力", "粮食局")
KINDS = ("小区", "宿舍", "新村", "花园", "公寓", "家园", "社区", "苑")


def compounds(count: int, rnd: random.Random) -> list:
    """``count`` distinct compound names."""
    names: list = []
    seen: set = set()
    while len(names) < count:
        name = rnd.choice(PLACES) + rnd.choice(("", "", "一", "二", "东", "西", "南", "北")) \
            + rnd.choice(KINDS)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def volunteer_names(count: int, rnd: random.Random) -> list:
    """``count`` distinct fictional volunteer names (two- and three-character)."""
    names: list = []
    seen: set = set()
    given = fictional.GIVEN + tuple("明晓磊静洋婷昊悦刚芳勇敏杰娟涛霞")
    while len(names) < count:
        name = rnd.choice(fictional.SURNAMES) + rnd.choice(given)
        if name in seen:
            name += rnd.choice("一二三四五六七八九")
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def rows(n: int, volunteers: int = 1000, seed: int = 2020):
    """``n`` rows in the shape of a staff sheet (``fictional.HEADER``), in list order."""
    rnd = random.Random(seed)
    per_compound = 350
    names = compounds(max(1, -(-n // per_compound)), rnd)
    helpers = volunteer_names(max(1, min(volunteers, n)), rnd)
    homes = []
    for c, compound in enumerate(names):
        take = min(per_compound, n - len(homes))
        if take <= 0:
            break
        buildings, units, floors = rnd.randint(4, 30), rnd.randint(2, 6), rnd.randint(6, 18)
        capacity = buildings * units * floors * 4
        while capacity < take:
            buildings += 4
            capacity = buildings * units * floors * 4
        for slot in sorted(rnd.sample(range(capacity), take)):
            b, rest = divmod(slot, units * floors * 4)
            u, rest = divmod(rest, floors * 4)
            f, r = divmod(rest, 4)
            homes.append((c, compound, b + 1, u + 1, f + 1, r + 1))
    for seq, (c, compound, b, u, f, r) in enumerate(homes, start=1):
        street = STREETS[c % len(STREETS)]
        yield (seq, rnd.choice(fictional.SURNAMES) + rnd.choice(fictional.GIVEN),
               rnd.choice(("奶奶", "爷爷")), compound, f"{b}栋", f"{u}单元", f"{f}{r:02d}",
               f"1{rnd.randint(3, 8)}{rnd.randint(10**8, 10**9 - 1)}",
               rnd.choice(fictional.CATEGORIES), f"{street}街第{c % 12 + 1}网格",
               helpers[(seq - 1) * len(helpers) // len(homes)], rnd.choice(fictional.NOTES))


def changed(rows_in, share: float, seed: int = 2024) -> list:
    """The rows with ``share`` of them altered (phone, note or room), ids kept."""
    rnd = random.Random(seed)
    out = [list(r) for r in rows_in]
    for index in rnd.sample(range(len(out)), max(1, int(len(out) * share))):
        row = out[index]
        what = index % 3
        if what == 0:
            row[7] = f"1{rnd.randint(3, 8)}{rnd.randint(10**8, 10**9 - 1)}"
        elif what == 1:
            row[11] = "请先打电话，下午在家" if row[11] != "请先打电话，下午在家" else "上午在家"
        else:
            row[6] = f"{rnd.randint(19, 30)}{rnd.randint(1, 4):02d}"
    return out


def write_csv(path: Path, table) -> Path:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fictional.HEADER)
        writer.writerows(table)
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--changed", type=float, default=0.0)
    args = parser.parse_args()
    table = list(rows(args.n, args.volunteers))
    write_csv(args.out, changed(table, args.changed) if args.changed else table)
