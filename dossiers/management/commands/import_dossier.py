"""`manage.py import_dossier PATH [--market CODE]`: import one dossier report, text or Markdown."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dossiers.report_parser import ReportError
from dossiers.services.dossier_import import dossier_import


class Command(BaseCommand):
    help = "Import a dossier report (flattened text or published Markdown); all or nothing, idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The report file.")
        parser.add_argument("--market", help="Market code, e.g. IN; must agree with the report's market.")

    def handle(self, *args, **options) -> None:
        path: Path = options["path"]
        try:
            result = dossier_import(path_or_file=path, file_name=path.name, market_code=options["market"], by=None)
        except ReportError as exc:
            raise CommandError(str(exc)) from None
        for line in result.summary_lines():
            self.stdout.write(line)
