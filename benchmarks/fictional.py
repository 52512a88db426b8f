"""Made-up households for the benchmarks (no real person), seeded so runs compare."""
from __future__ import annotations

import csv
import random
from pathlib import Path

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
            "卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江")
GIVEN = ("秀兰", "建国", "文明", "桂兰", "凤英", "金凤", "学军", "淑英", "玉珍", "志强", "德华",
         "春梅", "国庆", "素芬", "永福", "桂芳", "洪波", "丽华")
COMPOUNDS = ("沙湖小区", "电车宿舍", "九天公寓")
VOLUNTEERS = ("李明", "陈晓", "王磊", "赵静", "刘洋", "周婷", "吴昊", "孙悦")
CATEGORIES = ("独居老人", "空巢老人", "困难老人", "重症老人", "残障家庭")
NOTES = ("", "", "腿脚不便，请送到门口", "耳背，请多敲门", "上午在家", "请先打电话")
HEADER = ("序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "网格",
          "志愿者", "备注")


def rows(n: int, seed: int = 2020):
    """``n`` rows in the shape of a staff sheet (Chinese headers, see HEADER)."""
    rnd = random.Random(seed)
    volunteers = max(1, min(len(VOLUNTEERS) * (1 + n // 400), n // 5 or 1))
    names = [VOLUNTEERS[i % len(VOLUNTEERS)] + ("" if i < len(VOLUNTEERS) else str(i))
             for i in range(volunteers)]
    for seq in range(1, n + 1):
        yield (seq, rnd.choice(SURNAMES) + rnd.choice(GIVEN), rnd.choice(("奶奶", "爷爷")),
               rnd.choice(COMPOUNDS), f"{rnd.randint(1, 12)}栋", f"{rnd.randint(1, 4)}单元",
               f"{rnd.randint(1, 9)}0{rnd.randint(1, 4)}",
               f"1{rnd.randint(3, 8)}{rnd.randint(10**8, 10**9 - 1)}", rnd.choice(CATEGORIES),
               "第十网格", names[(seq - 1) * volunteers // n], rnd.choice(NOTES))


def write_csv(path: Path, n: int, seed: int = 2020) -> Path:
    """A UTF-8 (BOM) CSV recipient list of ``n`` fictional households."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows(n, seed))
    return path


# The obvious way reads the list with the csv module and maps the staff sheet's headers itself.
OBVIOUS_ALIASES = {"姓名": "name", "称呼": "honorific", "小区": "compound", "楼栋": "building",
                   "单元": "unit", "房号": "room", "联系电话": "phone", "人员类别": "category",
                   "网格": "grid", "志愿者": "volunteer", "备注": "notes", "序号": "id"}


def obvious_contexts(csv_path, *, batch: str, org: str, package: str, lang: str = "zh"):
    """The template context of each row, the way a docxtpl loop written by hand builds it."""
    import datetime as dt

    from letterpress.pipeline.letters import format_date, split_items

    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    date = format_date(dt.date(2020, 2, 24), lang)
    for seq, row in enumerate(records, start=1):
        ctx = dict(row)
        ctx.update({OBVIOUS_ALIASES[k]: v for k, v in row.items() if k in OBVIOUS_ALIASES})
        ctx.update(address=row["小区"] + row["楼栋"] + row["单元"] + row["房号"], package="",
                   seq=seq, total=len(records), batch=batch, org=org, date=date,
                   items=split_items(package), lang=lang)
        yield ctx
