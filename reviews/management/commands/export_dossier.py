"""Print or save a dossier report: `export_dossier DRUG --market CODE [--candidate DISEASE] --format md|html|json`.

Lives in `reviews` (not `dossiers`) because the report carries the review trail: signatures and decision
history, with the votes of an incomplete round left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dossiers.models import Candidate, Dossier, Drug, Market
from dossiers.report import FORMATS
from reviews.exports import dossier_export_render


class Command(BaseCommand):
    help = "Export a dossier (one drug in one market) as Markdown, printable HTML or JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("drug", help="Drug name, case-insensitive, e.g. lenalidomide.")
        parser.add_argument("--market", required=True, help="Market code, e.g. IN.")
        parser.add_argument("--candidate", help="Predicted indication (disease); default: the highest-scored one.")
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="md")
        parser.add_argument("--output", type=Path, help="Write to this file instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        dossier = _dossier(options["drug"], options["market"])
        candidate = _candidate(dossier, options["candidate"]) if options["candidate"] else None
        text = dossier_export_render(dossier=dossier, candidate=candidate, fmt=options["fmt"]).text
        output: Path | None = options["output"]
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Wrote {output} ({len(text.encode())} bytes)")


def _dossier(drug_name: str, market_code: str) -> Dossier:
    market = Market.objects.filter(code__iexact=market_code).first()
    if market is None:
        raise CommandError(f"Unknown market {market_code!r}.")
    drug = Drug.objects.filter(name__iexact=drug_name).first()
    if drug is None:
        raise CommandError(f"Unknown drug {drug_name!r}.")
    dossier = Dossier.objects.filter(drug=drug, market=market).first()
    if dossier is None:
        raise CommandError(f"No dossier for drug {drug.name!r} in market {market.code!r}.")
    return dossier


def _candidate(dossier: Dossier, disease: str) -> Candidate:
    candidate = dossier.candidates.filter(disease__iexact=disease).first()
    if candidate is None:
        known = ", ".join(dossier.candidates.order_by("disease").values_list("disease", flat=True)) or "none"
        raise CommandError(f"Unknown candidate {disease!r} for {dossier}; known: {known}.")
    return candidate
