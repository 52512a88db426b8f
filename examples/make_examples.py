"""Generate ``examples/recipients.xlsx``, the demo recipient list.

Every name, address and phone number in it is made up. The list mirrors the real round this
project was built for: 40 households in three compounds without property management (沙湖小区,
电车宿舍, 九天公寓) of grid 10 (第十网格), in five categories, visited by 8 volunteers who each
take a cluster of neighbouring buildings. It looks like a sheet office staff keep by hand: bold
header, the 小区 column merged down each compound's rows, phone numbers typed in as numbers (and
two landlines as text), some notes left empty.

    python examples/make_examples.py             # writes examples/recipients.xlsx
    python examples/make_examples.py OUT.xlsx    # writes it somewhere else

The generator is seeded and the file's dates and zip timestamps are fixed, so running it again
gives the same bytes.
"""
from __future__ import annotations

import datetime as dt
import io
import itertools
import random
import re
import sys
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

HERE = Path(__file__).resolve().parent
SEED = 20200224
STAMP = (2020, 2, 23, 20, 0, 0)

HEADERS = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "网格", "志愿者", "备注"]
WIDTHS = {"序号": 6, "姓名": 10, "称呼": 7, "小区": 12, "楼栋": 7, "单元": 8, "房号": 7,
          "联系电话": 16, "人员类别": 11, "网格": 11, "志愿者": 10, "备注": 30}
GRID = "第十网格"

#: The three compounds, in list order: floors and units of their buildings.
COMPOUNDS = {
    "沙湖小区": {"floors": 7, "units": 4},
    "电车宿舍": {"floors": 6, "units": 3},
    "九天公寓": {"floors": 9, "units": 2},
}

#: Volunteers and the buildings each one covers: (volunteer, compound, buildings, households).
CLUSTERS = [
    ("陈思远", "沙湖小区", (1, 2, 3), 5),
    ("刘雨桐", "沙湖小区", (4, 5, 6), 5),
    ("黄子轩", "沙湖小区", (7, 8), 6),
    ("周欣怡", "电车宿舍", (1, 2, 3), 6),
    ("杨浩然", "电车宿舍", (4, 5), 6),
    ("郑佳琪", "九天公寓", (1,), 4),
    ("何俊杰", "九天公寓", (2, 3), 4),
    ("许梦瑶", "九天公寓", (4,), 4),
]

#: How many households of each category (40 in all).
CATEGORIES = {"独居老人": 10, "空巢老人": 12, "困难老人": 6, "重症老人": 7, "残障家庭": 5}

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆汪范金石廖贾夏熊")
OLD_WOMEN = ["秀英", "桂英", "秀兰", "玉兰", "桂兰", "凤英", "淑珍", "玉珍", "桂芳", "秀珍",
             "翠兰", "金凤", "素华", "玉梅", "桂香", "春兰", "淑英", "凤兰", "秀芳", "玉英"]
OLD_MEN = ["建国", "国华", "德明", "文华", "志强", "长林", "明德", "国强", "建华", "振华",
           "国庆", "德胜", "保国", "家和", "正清", "福生", "光明", "学文", "汉生", "金生"]
MID_WOMEN = ["丽华", "红梅", "晓燕", "丽萍", "海燕", "春梅", "建红"]
MID_MEN = ["建军", "志刚", "卫东", "海波", "建平", "红兵", "卫国"]

NOTES_ANY = ["听力不好请大声敲门", "上午在家", "下午在家", "子女在外地，送达后请电话告知",
             "请先打电话再上门", "家中养狗，敲门后稍等"]
NOTES_ILL = ["行动不便请敲门后稍等", "卧床，家属代收", "需代购降压药，已登记", "行动不便请敲门后稍等"]
NOTES_DISABLED = ["轮椅出行，请送到门口", "行动不便请敲门后稍等", "视力不好，请当面说明"]

MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "173", "176", "177",
                   "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "199"]


def households(rng: random.Random) -> list[dict]:
    """The 40 demo households, in the order staff keep them (compound, building, unit, room)."""
    categories = [c for c, n in CATEGORIES.items() for _ in range(n)]
    rng.shuffle(categories)
    used_names: set[str] = set()
    used_rooms: set[tuple] = set()
    used_phones: set[str] = set()
    rows = []
    for volunteer, compound, buildings, count in CLUSTERS:
        shape = COMPOUNDS[compound]
        for _ in range(count):
            category = categories.pop()
            while True:
                building = rng.choice(buildings)
                unit = rng.randint(1, shape["units"])
                # elderly and disabled residents more often live low down
                floor = min(rng.randint(1, shape["floors"]), rng.randint(1, shape["floors"]))
                room = floor * 100 + rng.randint(1, 2)
                if (compound, building, unit, room) not in used_rooms:
                    used_rooms.add((compound, building, unit, room))
                    break
            if category == "残障家庭":
                female = rng.random() < 0.5
                given, honorific = (MID_WOMEN, "阿姨") if female else (MID_MEN, "叔叔")
            else:
                female = rng.random() < 0.6
                given, honorific = (OLD_WOMEN, "奶奶") if female else (OLD_MEN, "爷爷")
            while True:
                name = rng.choice(SURNAMES) + rng.choice(given)
                if name not in used_names:
                    used_names.add(name)
                    break
            while True:
                phone = rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8))
                if phone not in used_phones:
                    used_phones.add(phone)
                    break
            if category == "重症老人":
                note = rng.choice(NOTES_ILL) if rng.random() < 0.7 else ""
            elif category == "残障家庭":
                note = rng.choice(NOTES_DISABLED) if rng.random() < 0.6 else ""
            else:
                note = rng.choice(NOTES_ANY) if rng.random() < 0.3 else ""
            rows.append({
                "姓名": name, "称呼": honorific, "小区": compound, "楼栋": f"{building}栋",
                "单元": f"{unit}单元", "房号": room, "联系电话": int(phone), "人员类别": category,
                "网格": GRID, "志愿者": volunteer, "备注": note,
                "_key": (list(COMPOUNDS).index(compound), building, unit, room),
            })
    rows.sort(key=lambda r: r["_key"])
    # Two households without a mobile phone: a landline, typed as text.
    for row in rng.sample(rows, 2):
        row["联系电话"] = f"027-8765{rng.randint(0, 9999):04d}"
    for number, row in enumerate(rows, start=1):
        row["序号"] = number
        del row["_key"]
    return rows


def workbook(rows: list[dict]) -> Workbook:
    wb = Workbook()
    ws = wb.active
    ws.title = "慰问名单"
    thin = Side(style="thin", color="000000")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    centre = Alignment(horizontal="center", vertical="center")
    left = Alignment(horizontal="left", vertical="center", wrap_text=True)
    body_font = Font(name="宋体", size=11)

    ws.append(HEADERS)
    for cell in ws[1]:
        cell.font = Font(name="宋体", size=11, bold=True)
        cell.fill = PatternFill("solid", fgColor="D9D9D9")
        cell.alignment = centre
        cell.border = border
    ws.row_dimensions[1].height = 20

    for row in rows:
        ws.append([row[h] if row[h] != "" else None for h in HEADERS])
    for r in range(2, len(rows) + 2):
        for c, header in enumerate(HEADERS, start=1):
            cell = ws.cell(row=r, column=c)
            cell.font = body_font
            cell.border = border
            cell.alignment = left if header == "备注" else centre
            if header == "联系电话" and isinstance(cell.value, str):
                cell.number_format = "@"  # typed as text, the way a landline with a dash is

    # The 小区 column merged down each run of rows of the same compound.
    col = HEADERS.index("小区") + 1
    start = 2
    for compound, run in itertools.groupby(rows, key=lambda r: r["小区"]):
        end = start + len(list(run)) - 1
        if end > start:
            ws.merge_cells(start_row=start, start_column=col, end_row=end, end_column=col)
        start = end + 1

    for header, width in WIDTHS.items():
        ws.column_dimensions[get_column_letter(HEADERS.index(header) + 1)].width = width
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True

    stamp = dt.datetime(*STAMP)
    wb.properties.creator = "青鱼嘴社区第十网格"
    wb.properties.title = "爱心慰问名单（演示数据，均为虚构）"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.lastModifiedBy = "青鱼嘴社区第十网格"
    return wb


def _reproducible(data: bytes) -> bytes:
    """Fixed zip timestamps and document dates, so the same seed gives the same bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    stamp = dt.datetime(*STAMP).strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            blob = src.read(name)
            if name == "docProps/core.xml":
                blob = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", blob)
            info = zipfile.ZipInfo(name, date_time=STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, blob, compresslevel=9)
    return out.getvalue()


def write(path: Path) -> Path:
    rows = households(random.Random(SEED))
    buf = io.BytesIO()
    workbook(rows).save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_reproducible(buf.getvalue()))
    tmp.replace(path)
    return path


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else HERE / "recipients.xlsx"
    print(write(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
