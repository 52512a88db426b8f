"""[pictures] and picture columns, [jinja] plugins and the docxtpl engine, as a user meets
them: a letterpress.toml, a list, `letterpress check` / `letterpress letters`, letters read
back with python-docx."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from docx import Document
from docx.shared import Mm
from PIL import Image

from letterpress.cli import main

HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "志愿者",
          "照片"]


def png(path: Path, colour, size=(40, 40), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, fmt)
    return path


def template(folder: Path) -> Path:
    """A letter with a dummy stamp in its header and its body, and a logo in the footer."""
    doc = Document()
    section = doc.sections[0]
    section.header.paragraphs[0].add_run("{{ batch }} ").add_picture(
        str(png(folder / "art" / "dummy.png", (200, 200, 200))), width=Mm(12))
    section.footer.paragraphs[0].add_run().add_picture(
        str(png(folder / "art" / "logo.png", (10, 10, 120), (80, 20))), width=Mm(20))
    doc.add_paragraph("尊敬的{{ name }}{{ honorific }}:{{ name|shout }}")
    doc.add_paragraph().add_run().add_picture(str(folder / "art" / "dummy.png"), width=Mm(20))
    path = folder / "stamp-letter.docx"
    doc.save(str(path))
    return path


def write_list(folder: Path, photos) -> Path:
    rows = [HEADER] + [[i, f"王{i}英", "奶奶", "沙湖小区", f"{i}栋", "1单元", f"{i}01",
                        f"1380000{i:04d}", "独居老人", "李明", photo]
                       for i, photo in enumerate(photos, start=1)]
    path = folder / "list.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed plugin: a module and its entry point in the group letterpress.jinja."""
    site = tmp_path / "site"
    (site / "lp_test_filters").mkdir(parents=True)
    (site / "lp_test_filters" / "__init__.py").write_text(
        "FILTERS = {'shout': lambda v: str(v) + '!'}\nGLOBALS = {}\n", encoding="utf-8")
    info = site / "lp_test_filters-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lp-test-filters\n"
                                   "Version: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[letterpress.jinja]\nshouting = lp_test_filters\n",
                                           encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield "shouting"
    sys.modules.pop("lp_test_filters", None)


def config(folder: Path, pictures: str, plugins='["shouting"]', extra="") -> Path:
    path = folder / "letterpress.toml"
    path.write_text(textwrap.dedent(f"""\
        [batch]
        title = "2020-02-24 图章"
        org = "青鱼嘴社区"
        date = 2020-02-24
        recipients = "list.csv"
        template = "stamp-letter.docx"
        {extra}
        [pictures]
        {pictures}
        [jinja]
        plugins = {plugins}
        """), encoding="utf-8")
    return path


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def shown(part) -> list:
    """The pictures a python-docx part shows, as their pixel colour at the centre."""
    out = []
    for rid in re.findall(r'r:embed="([^"]+)"', part.blob.decode("utf-8")):
        image = Image.open(io.BytesIO(part.related_parts[rid].blob)).convert("RGB")
        out.append(image.getpixel((image.width // 2, image.height // 2)))
    return out


def test_picture_column_and_batch_picture_in_every_letter(tmp_path, plugin):
    template(tmp_path)
    colours = [(220, 0, 0), (0, 160, 0), (0, 0, 220)]
    png(tmp_path / "photos" / "1.png", colours[0])
    png(tmp_path / "photos" / "2.jpg", colours[1], fmt="JPEG")   # converted to the dummy's PNG
    png(tmp_path / "photos" / "3.png", colours[2])
    png(tmp_path / "logo-new.png", (250, 200, 0), (80, 20))
    write_list(tmp_path, ["photos/1.png", "photos/2.jpg", "photos\\3.png"])
    cfg = config(tmp_path, '"dummy.png" = { column = "照片" }\n"logo.png" = "logo-new.png"')
    result = run("letters", "-c", cfg, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    letters = sorted((tmp_path / "out" / "letters").glob("*.docx"))
    assert len(letters) == 3
    for path, colour in zip(letters, colours):
        doc = Document(str(path))
        assert shown(doc.part) == [colour]
        assert shown(doc.sections[0].header.part) == [colour]
        assert shown(doc.sections[0].footer.part) == [(250, 200, 0)]
        assert doc.paragraphs[0].text.endswith("英!")          # the plugin's filter
    merged = Document(str(tmp_path / "out" / "letters.docx"))
    assert [shown(s.header.part)[0] for s in merged.sections] == colours
    assert shown(merged.part) == colours
    assert all(shown(s.footer.part) == [(250, 200, 0)] for s in merged.sections)


def test_check_reports_every_picture_problem_at_once(tmp_path, plugin):
    template(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "fake.png").write_text("not a picture", encoding="utf-8")
    outside = png(tmp_path.parent / f"{tmp_path.name}-outside.png", (1, 2, 3))
    write_list(tmp_path, ["photos/fake.png", "../" + outside.name, str(outside),
                          "photos/missing.png", ""])
    cfg = config(tmp_path, '"dummy.png" = { column = "照片" }\n"nosuch.png" = "x.png"\n'
                           '"logo.png" = { column = "头像" }')
    result = run("check", "-c", cfg)
    assert result.exit_code == 1
    out = result.output
    assert "fake.png is not a picture" in out and "row 2" in out
    assert out.count("outside the recipient list's folder") == 2
    assert "missing.png does not exist" in out
    assert "'nosuch.png', which is not a picture in the template" in out
    assert "dummy.png" in out and "logo.png" in out      # the names it does have
    assert "'头像'" in out                                  # the column the list lacks
    assert "row(s) 6" in out                                # empty cell: a warning
    assert not (tmp_path / "out").exists()


def test_unknown_plugin_is_a_config_error(tmp_path):
    template(tmp_path)
    write_list(tmp_path, [""])
    cfg = config(tmp_path, "", plugins='["no_such_plugin"]')
    result = run("check", "-c", cfg)
    assert result.exit_code == 1
    assert "no_such_plugin" in result.output and "not installed" in result.output


def test_plugin_names_only_entry_points_never_modules(tmp_path):
    """A name in [jinja] is looked up among installed plugins only: naming a module (even
    one that exists) imports nothing."""
    from letterpress.docx.plugins import load_plugins
    from letterpress.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_plugins(["os"])
    assert caught.value.code == "unknown_plugin"


def test_docxtpl_engine_from_the_config_gives_a_notice_and_the_same_letters(tmp_path, plugin):
    template(tmp_path)
    png(tmp_path / "photos" / "1.png", (220, 0, 0))
    write_list(tmp_path, ["photos/1.png", "photos/1.png"])
    fast = config(tmp_path, '"dummy.png" = { column = "照片" }')
    assert run("letters", "-c", fast, "-o", tmp_path / "fast", "-q").exit_code == 0
    slow = config(tmp_path, '"dummy.png" = { column = "照片" }', extra='engine = "docxtpl"')
    result = run("letters", "-c", slow, "-o", tmp_path / "slow")
    assert result.exit_code == 0, result.output
    assert "docxtpl" in result.output and "slower" in result.output
    for name in ("0001-王1英.docx", "0002-王2英.docx"):
        a = Document(str(tmp_path / "fast" / "letters" / name))
        b = Document(str(tmp_path / "slow" / "letters" / name))
        assert [p.text for p in a.paragraphs] == [p.text for p in b.paragraphs]
        assert shown(a.part) == shown(b.part) == [(220, 0, 0)]
    merged = Document(str(tmp_path / "slow" / "letters.docx"))
    assert len(merged.inline_shapes) == 2


def test_large_print_letters_default_to_a4_4_slips():
    from letterpress import config as cfg
    from letterpress.resources import resolve_template

    for name in ("zh-large", "en-large"):
        settings = cfg.load(None, template=name)
        assert settings.slip_layout == "a4-4" and settings.lang == name[:2]
        assert resolve_template(name).is_file()
    assert cfg.load(None, template="zh-large", layout="a4-8").slip_layout == "a4-8"
    assert cfg.load(None, template="zh").slip_layout == "a4-8"
