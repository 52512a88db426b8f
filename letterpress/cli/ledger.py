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
    main,
    quiet_option,
    settings_from,
)
from letterpress.errors import ExitStatus


@main.command()
@click.option("--batch", "title", help="Batch title (may be left out when the ledger holds one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (documented in README).")
@db_option
def status(title, as_json, db):
    """Households per batch and volunteer, by state."""
    from letterpress.ledger import Ledger

    settings = settings_from(None, db=db)
    ledger = Ledger.open(settings.db, create=False)
    try:
        _echo_err(f"Ledger: {ledger.describe()}")
        data = ledger.status(title)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for b in data["batches"]:
        click.echo(f"{b['title']} ({b['date']}): {b['households']} households: "
                   f"{b['delivered']} delivered, {b['failed']} failed, "
                   f"{b['outstanding']} outstanding, {b['withdrawn']} withdrawn")
        for v in b["volunteers"]:
            click.echo(f"  {v['name'] or 'unassigned':<12} {v['households']:>4} households  "
                       f"{v['delivered']:>4} delivered  {v['failed']:>4} failed  "
                       f"{v['outstanding']:>4} outstanding")



def _show_confirmations(described, results) -> None:
    _echo_err(f"Ledger: {described}")
    counts: Dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        line = f"line {r.line}: " if r.line else ""
        if r.status == "rejected":
            click.echo(click.style("rejected ", fg="red") + f"{line}{r.text}: {r.message}")
        elif r.status == "already_delivered":
            click.echo(click.style("duplicate", fg="yellow") + f" {line}{r.code} No.{r.seq} "
                       f"{r.name}: already delivered; recorded and flagged for review")
        elif r.status == "repeated":
            click.echo(f"repeated  {line}{r.code or r.text}: already recorded, nothing new")
        else:
            click.echo(click.style("recorded ", fg="green") + f"{line}{r.code} No.{r.seq} {r.name}")
    click.echo(f"{counts.get('created', 0)} new, {counts.get('repeated', 0)} repeated, "
               f"{counts.get('already_delivered', 0)} duplicate, "
               f"{counts.get('rejected', 0)} rejected")
    if counts.get("rejected"):
        sys.exit(int(ExitStatus.ERROR))


OUTCOME_CHOICE = click.Choice(OUTCOMES)


@main.command()
@click.argument("codes", nargs=-1)
@click.option("--from", "from_file", type=click.Path(dir_okay=False),
              help="A scanner app's export (CSV or text): one URL or code a line.")
@click.option("--outcome", type=OUTCOME_CHOICE, default="delivered", show_default=True)
@click.option("--by", "by", help="Volunteer who made the delivery (required for typed codes).")
@click.option("--at", "at", help="When, e.g. \"2020-02-24 10:32\" (default now).")
@click.option("--note", default="", help="Note (required for proxy and other).")
@db_option
def confirm(codes, from_file, outcome, by, at, note, db):
    """Record deliveries from typed codes, signed paper slips or a scanner export.

    \b
    letterpress confirm K7Q2M-9XD3T-H 4ZMVZ-T1KCC-M --by 李明
    letterpress confirm --from scans.csv
    """
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    if from_file and codes:
        raise click.UsageError("give codes or --from FILE, not both")
    if from_file:
        described, results = staff.confirm_from(settings.db, Path(from_file), outcome, by, note)
    else:
        if not codes:
            raise click.UsageError("give one or more codes, or --from FILE")
        if not by:
            raise click.UsageError("say who delivered with --by VOLUNTEER")
        when = staff.parse_time(at) if at else None
        described, results = staff.confirm(settings.db, codes, outcome, by, when, note)
    _show_confirmations(described, results)


@main.command()
@batch_option
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="Default: from the file name's ending, else csv.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), required=True,
              help="File to write.")
@db_option
def report(title, fmt, output, db):
    """One row per household: state, last outcome, when, by whom, note."""
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    fmt = fmt or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
    described, count = staff.report(settings.db, title, fmt, Path(output))
    _echo_err(f"Ledger: {described}")
    click.echo(f"Report: {count} households -> {output}")


@main.command()
@batch_option
@click.option("--outstanding", is_flag=True,
              help="Every household not yet delivered (outstanding or failed).")
@click.option("--household", "keys", multiple=True, help="A household id (repeatable).")
@db_option
@quiet_option
def reprint(title, outstanding, keys, db, quiet):
    """New codes and slips for households not yet delivered; the old codes stop working."""
    from letterpress.pipeline import rebuild

    if not outstanding and not keys:
        raise click.UsageError("say which households: --outstanding, or --household ID")
    settings = settings_from(None, db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.reprint(settings, title, outstanding=outstanding, keys=keys,
                               progress=progress)
    finally:
        progress.close()
    _echo_err(f"Ledger: {result.ledger}")
    if not result.count:
        click.echo(f"Nothing to reprint in \"{result.title}\": every household is delivered.")
        return
    made = "slips and letters" if result.letters_made else "slips"
    click.echo(f"Reprinted {result.count} households of \"{result.title}\": new codes, old ones "
               f"revoked. Print the {made} in {result.folder}; {result.out} is up to date.")



@main.command()
@batch_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
def purge(title, yes, db):
    """Remove a finished batch's personal data from the ledger and its output folder.

    Names, addresses, phones, categories and notes go; the counts by state,
    volunteer and compound stay, so the round can still be reported.
    """
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    plan = staff.purge_plan(settings.db, title)
    _echo_err(f"Ledger: {plan.ledger}")
    click.echo(f"Batch \"{plan.title}\": {plan.households} households.")
    click.echo("This removes their names, addresses, phones, categories and notes from the "
               "ledger (counts and states stay), revokes every code and badge,")
    if plan.paths:
        click.echo(f"and deletes {len(plan.paths)} file(s) and folder(s) in {plan.folder}: "
                   + ", ".join(p.name for p in plan.paths[:6]) + (" …" if len(plan.paths) > 6
                                                                 else "") + ".")
    else:
        click.echo("(no output files of this batch were found to delete).")
    if not yes and not click.confirm("It cannot be undone. Purge?", default=False):
        click.echo("Nothing was changed.")
        sys.exit(int(ExitStatus.ERROR))
    count = staff.purge(settings.db, plan)
    click.echo(f"Purged \"{plan.title}\": {count} households kept as counts only.")
