"""What every command shares: the group that turns errors into messages, options, progress.

Click lives in this package and nowhere else.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import click

from letterpress import __version__
from letterpress.choices import DEFAULT_LAYOUT, LANGS, LAYOUTS
from letterpress.errors import CheckFailed, ExitStatus, LetterpressError, mask_secrets
from letterpress.files import open_private, private_dir

# ---------------------------------------------------------------------------
# Output helpers


def _echo_err(text: str = "", **style) -> None:
    text = mask_secrets(text)
    click.echo(click.style(text, **style) if style else text, err=True)


def show_problems(problems, *, out_err: bool = True) -> None:
    """Errors first, then warnings, each with where and how to fix."""
    for p in sorted(problems, key=lambda p: (not p.is_error,)):
        label = click.style("error  ", fg="red", bold=True) if p.is_error else \
            click.style("warning", fg="yellow")
        where = str(p.where)
        click.echo(mask_secrets(f"{label} {where + ': ' if where else ''}{p.message}"),
                   err=out_err)
        if p.hint:
            click.echo(f"        how to fix: {p.hint}", err=out_err)


class Progress:
    """A progress bar per stage on a terminal; silent when quiet or not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Optional[Any] = None        # a click progress bar while a stage runs
        self.stage: Optional[str] = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total < 20:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = bar = click.progressbar(length=total, label=f"{stage:<11}",
                                               file=sys.stderr, show_pos=True)
            bar.__enter__()
            self.done = 0
        assert self.bar is not None
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class LetterpressGroup(click.Group):
    """Turns library errors into messages and exit statuses: never a traceback for a mistake."""

    def invoke(self, ctx):
        # What letterpress writes holds personal data: owner-only, also what LibreOffice,
        # SQLite or openpyxl create for it (the library sets modes itself as well).
        umask = os.umask(0o077)
        try:
            return self._invoke(ctx)
        finally:
            os.umask(umask)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CheckFailed as exc:
            show_problems(exc.problems)
            _echo_err(f"{exc.message} {exc.hint[0].upper() + exc.hint[1:]}.", fg="red")
            ctx.exit(int(ExitStatus.ERROR))
        except LetterpressError as exc:
            _echo_err(mask_secrets(f"Error: {exc}"), fg="red")
            ctx.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            _echo_err("Interrupted. Files being written were not put in place; run the "
                      "command again to finish.", fg="red")
            ctx.exit(int(ExitStatus.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:  # a bug, not a user mistake: keep the details out of the way
            log = Path("output") / "letterpress-error.log"
            try:
                private_dir(log.parent)
                with open_private(log, "a", encoding="utf-8") as fh:   # owner-only
                    fh.write(mask_secrets(
                        f"--- {_dt.datetime.now().isoformat()} letterpress {__version__} "
                        f"{' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n"))
                where = f"; details were written to {log}"
            except OSError:
                where = ""
            _echo_err(mask_secrets(f"Internal error: {sys.exc_info()[1]!r}{where}. This is a bug "
                                   "in letterpress, not a mistake of yours; please report it "
                                   "with that file."), fg="red")
            ctx.exit(int(ExitStatus.ERROR))


def settings_from(config: Optional[str], **flags):
    from letterpress import config as config_mod

    if "date" in flags and flags["date"] is not None:
        flags["date"] = config_mod.parse_date(flags["date"])
    return config_mod.load(Path(config) if config else None, **flags)


# ---------------------------------------------------------------------------
# Shared options

def list_options(func):
    """Options that say which list, template and batch a command works on."""
    opts = [
        click.option("--recipients", "-r", type=click.Path(dir_okay=False),
                     help="Recipient list: .xlsx or .csv (UTF-8 or GBK)."),
        click.option("--template", "-t", help="Word template (.docx), or a built-in one: zh, en."),
        click.option("--batch", "title", help="Batch title, e.g. \"2020-02-24 Qingyuzui food packages\"."),
        click.option("--org", help="Sender (organisation) printed on letters and slips."),
        click.option("--date", help="Date of the round, YYYY-MM-DD (default today)."),
        click.option("--package", help="Package contents when the list has no package column, "
                                       "e.g. \"肉制品、蔬菜\"."),
        click.option("--lang", type=click.Choice(LANGS), help="Language of dates and labels."),
        click.option("--encoding", help="CSV encoding, when detection guesses wrong (e.g. gbk)."),
        click.option("--sheet", help="Worksheet of an .xlsx (default: the first)."),
        click.option("--config", "-c", type=click.Path(dir_okay=False),
                     help="letterpress.toml (default: ./letterpress.toml if present)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def build_options(func):
    opts = [
        click.option("--base-url", help="Address phones use to reach `letterpress serve` "
                                        "(default http://<this machine's LAN address>:8470)."),
        click.option("--layout", type=click.Choice(LAYOUTS),
                     help=f"Slip layout (default {DEFAULT_LAYOUT})."),
        click.option("--font", type=click.Path(dir_okay=False),
                     help="CJK TrueType font for slips and run sheets."),
        click.option("--slip-fields", help="Extra fields printed on slips: category, phone."),
        click.option("--pdf", is_flag=True, default=None,
                     help="Also make letters.pdf and print/NN-volunteer.pdf (needs LibreOffice)."),
        click.option("--duplex", is_flag=True, default=None,
                     help="With --pdf: pad each letter to an even page count for two-sided "
                          "printing."),
        db_option,
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


db_option = click.option("--db", help="Ledger: a SQLAlchemy URL (default sqlite:///output/"
                                      "letterpress.db, or $LETTERPRESS_DB).")
out_option = click.option("--out", "-o", type=click.Path(file_okay=False),
                          help="Output folder (default output/<batch title>).")
jobs_option = click.option("--jobs", "-j", type=click.IntRange(1, 64),
                           help="Worker processes for rendering (default 1).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary_line(result) -> str:
    return (f"{plural(result.households, 'household')}, "
            f"{plural(result.volunteers, 'volunteer')}, "
            f"{plural(result.letters, 'letter')} -> {result.out}")


# ---------------------------------------------------------------------------
# Commands

@click.group(cls=LetterpressGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="letterpress")
def main():
    """letterpress: letters, QR delivery slips and a handover ledger for a delivery round.

    \b
    Typical round:
      letterpress check  -r recipients.xlsx -t zh     find every problem first
      letterpress build  -r recipients.xlsx -t zh     letters, slips, run sheets, ledger
      letterpress serve --lan                         volunteers scan slips at the door
      letterpress status                              who got their package
    """


batch_option = click.option("--batch", "title",
                            help="Batch title (may be left out when the ledger holds one batch).")
