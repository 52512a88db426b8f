"""Commands over the ledger: status, confirm, report, reprint, purge."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict

import click

from letterpress.choices import OUTCOMES
from letterpress.cli.common import (
    Progress,
    _echo_err,
    batch_option,
    db_option,
    households,
    main,
    quiet_option,
    settings_from,
)
from letterpress.errors import ExitStatus
from letterpress.i18n import N_, _, pgettext


@main.command(help=N_("Households per batch and volunteer, by state."))
@click.option("--batch", "title",
              help=N_("Batch title (may be left out when the ledger holds one)."))
@click.option("--json", "as_json", is_flag=True, help=N_("Print JSON (documented in README)."))
@db_option
def status(title, as_json, db):
    from letterpress.ledger import Ledger

    settings = settings_from(None, db=db)
    ledger = Ledger.open(settings.db, create=False)
    try:
        _echo_err(_("Ledger: %(ledger)s", ledger=ledger.describe()))
        data = ledger.status(title)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for b in data["batches"]:
        click.echo(_("%(title)s (%(date)s): %(households)s: %(delivered)s delivered, "
                     "%(failed)s failed, %(outstanding)s outstanding, %(withdrawn)s withdrawn",
                     title=b["title"], date=b["date"], households=households(b["households"]),
                     delivered=b["delivered"], failed=b["failed"], outstanding=b["outstanding"],
                     withdrawn=b["withdrawn"]))
        for v in b["volunteers"]:
            name = v["name"] or _("unassigned")
            click.echo("  " + name.ljust(12) + " " + _(
                "%(households)4d households  %(delivered)4d delivered  %(failed)4d failed  "
                "%(outstanding)4d outstanding", households=v["households"],
                delivered=v["delivered"], failed=v["failed"], outstanding=v["outstanding"]))



def _show_confirmations(described, results) -> None:
    _echo_err(_("Ledger: %(ledger)s", ledger=described))
    counts: Dict[str, int] = {}
    labels = {"rejected": pgettext("confirm", "rejected"),
              "already_delivered": pgettext("confirm", "duplicate"),
              "repeated": pgettext("confirm", "repeated"),
              "created": pgettext("confirm", "recorded")}
    width = max(len(label) + sum(1 for ch in label if ord(ch) > 0x2e80)
                for label in labels.values())

    def label(status: str, **style) -> str:
        text = labels[status]
        text += " " * (width - len(text) - sum(1 for ch in text if ord(ch) > 0x2e80))
        return click.style(text, **style) if style else text

    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        line = _("line %(line)s: ", line=r.line) if r.line else ""
        if r.status == "rejected":
            click.echo(label("rejected", fg="red") + " " + _(
                "%(where)s: %(message)s", where=line + r.text, message=r.message))
        elif r.status == "already_delivered":
            click.echo(label("already_delivered", fg="yellow") + " " + line + _(
                "%(code)s No.%(seq)s %(name)s: already delivered; recorded and flagged for "
                "review", code=r.code, seq=r.seq, name=r.name))
        elif r.status == "repeated":
            click.echo(label("repeated") + " " + line + _(
                "%(code)s: already recorded, nothing new", code=r.code or r.text))
        else:
            click.echo(label("created", fg="green") + " " + line + _(
                "%(code)s No.%(seq)s %(name)s", code=r.code, seq=r.seq, name=r.name))
    click.echo(_("%(new)s new, %(repeated)s repeated, %(duplicate)s duplicate, %(rejected)s "
                 "rejected", new=counts.get("created", 0), repeated=counts.get("repeated", 0),
                 duplicate=counts.get("already_delivered", 0),
                 rejected=counts.get("rejected", 0)))
    if counts.get("rejected"):
        sys.exit(int(ExitStatus.ERROR))


OUTCOME_CHOICE = click.Choice(OUTCOMES)


@main.command(help=N_("""Record deliveries from typed codes, signed paper slips or a scanner
export.

\b
letterpress confirm K7Q2M-9XD3T-H 4ZMVZ-T1KCC-M --by 李明
letterpress confirm --from scans.csv
"""))
@click.argument("codes", nargs=-1)
@click.option("--from", "from_file", type=click.Path(dir_okay=False),
              help=N_("A scanner app's export (CSV or text): one URL or code a line."))
@click.option("--outcome", type=OUTCOME_CHOICE, default="delivered", show_default=True,
              help=N_("What happened at the door."))
@click.option("--by", "by",
              help=N_("Volunteer who made the delivery (required for typed codes)."))
@click.option("--at", "at", help=N_("When, e.g. \"2020-02-24 10:32\" (default now)."))
@click.option("--note", default="", help=N_("Note (required for proxy and other)."))
@db_option
def confirm(codes, from_file, outcome, by, at, note, db):
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    if from_file and codes:
        raise click.UsageError(_("give codes or --from FILE, not both"))
    if from_file:
        described, results = staff.confirm_from(settings.db, Path(from_file), outcome, by, note)
    else:
        if not codes:
            raise click.UsageError(_("give one or more codes, or --from FILE"))
        if not by:
            raise click.UsageError(_("say who delivered with --by VOLUNTEER"))
        when = staff.parse_time(at) if at else None
        described, results = staff.confirm(settings.db, codes, outcome, by, when, note)
    _show_confirmations(described, results)


@main.command(help=N_("One row per household: state, last outcome, when, by whom, note."))
@batch_option
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help=N_("Default: from the file name's ending, else csv."))
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), required=True,
              help=N_("File to write."))
@db_option
def report(title, fmt, output, db):
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    fmt = fmt or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
    described, count = staff.report(settings.db, title, fmt, Path(output))
    _echo_err(_("Ledger: %(ledger)s", ledger=described))
    click.echo(_("Report: %(households)s -> %(file)s", households=households(count),
                 file=output))


@main.command(help=N_("New codes and slips for households not yet delivered; the old codes "
                       "stop working."))
@batch_option
@click.option("--outstanding", is_flag=True,
              help=N_("Every household not yet delivered (outstanding or failed)."))
@click.option("--household", "keys", multiple=True, help=N_("A household id (repeatable)."))
@db_option
@quiet_option
def reprint(title, outstanding, keys, db, quiet):
    from letterpress.pipeline import rebuild

    if not outstanding and not keys:
        raise click.UsageError(_("say which households: --outstanding, or --household ID"))
    settings = settings_from(None, db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.reprint(settings, title, outstanding=outstanding, keys=keys,
                               progress=progress)
    finally:
        progress.close()
    _echo_err(_("Ledger: %(ledger)s", ledger=result.ledger))
    if not result.count:
        click.echo(_("Nothing to reprint in \"%(title)s\": every household is delivered.",
                     title=result.title))
        return
    if result.letters_made:
        text = _("Reprinted %(households)s of \"%(title)s\": new codes, old ones revoked. Print "
                 "the slips and letters in %(folder)s.", households=households(result.count),
                 title=result.title, folder=result.folder)
    else:
        text = _("Reprinted %(households)s of \"%(title)s\": new codes, old ones revoked. Print "
                 "the slips in %(folder)s.", households=households(result.count),
                 title=result.title, folder=result.folder)
    click.echo(text)
    if result.remade:
        click.echo(_("  letters.pdf and the print packs in %(folder)s were made again with the "
                     "new codes.", folder=result.out / "print"))
    if result.stale:
        files = ", ".join(str(p.relative_to(result.out)) for p in result.stale)
        _echo_err(click.style(_("warning"), fg="yellow") + " " + _(
            "these files still show the revoked codes; do not print them: %(files)s",
            files=files))
        _echo_err("        " + _("how to fix: %(hint)s", hint=_(
            "run `letterpress pdf` (needs LibreOffice) to make them again")))
        click.echo(_("  %(out)s: slips, run sheets and manifest are up to date; %(count)s print "
                     "file(s) are stale (listed above).", out=result.out,
                     count=len(result.stale)))
    else:
        click.echo(_("  %(out)s is up to date.", out=result.out))



@main.command(help=N_("""Remove a finished batch's personal data from the ledger and its output
folder.

Names, addresses, phones, categories and notes go; the counts by state, volunteer and compound
stay, so the round can still be reported.
"""))
@batch_option
@click.option("--yes", is_flag=True, help=N_("Do not ask for confirmation."))
@db_option
def purge(title, yes, db):
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    plan = staff.purge_plan(settings.db, title)
    _echo_err(_("Ledger: %(ledger)s", ledger=plan.ledger))
    click.echo(_("Batch \"%(title)s\": %(households)s.", title=plan.title,
                 households=households(plan.households)))
    click.echo(_("This removes their names, addresses, phones, categories and notes from the "
                 "ledger (counts and states stay), revokes every code and badge,"))
    if plan.paths:
        names = ", ".join(p.name for p in plan.paths[:6]) + (" …" if len(plan.paths) > 6 else "")
        click.echo(_("and deletes %(count)s file(s) and folder(s) in %(folder)s: %(names)s.",
                     count=len(plan.paths), folder=plan.folder, names=names))
    else:
        click.echo(_("(no output files of this batch were found to delete)."))
    if not yes and not click.confirm(_("It cannot be undone. Purge?"), default=False):
        click.echo(_("Nothing was changed."))
        sys.exit(int(ExitStatus.ERROR))
    count = staff.purge(settings.db, plan)
    click.echo(_("Purged \"%(title)s\": %(households)s kept as counts only.", title=plan.title,
                 households=households(count)))
