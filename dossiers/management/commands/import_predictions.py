"""`manage.py import_predictions PATH --market CODE`: load a TxGNN prediction CSV (plain or .gz)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dossiers.services.prediction_import import predictions_import


class Command(BaseCommand):
    help = "Import a TxGNN prediction CSV (scores, knowledge-graph or merged shape, plain or gzip) into a market."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The CSV file, plain or gzip-compressed.")
        parser.add_argument("--market", required=True, help="Market code, e.g. IN.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args: object, **options: object) -> None:
        path = options["path"]
        assert isinstance(path, Path)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            result = predictions_import(
                path=path, market_code=str(options["market"]), progress=not options["no_progress"]
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            f"{result.file_name} ({result.shape} shape): {result.rows_total:,} rows, "
            f"{result.distinct:,} distinct predictions ({result.duplicates:,} duplicate rows merged)\n"
            f"inserted {result.inserted:,}, updated {result.updated:,}, unchanged {result.unchanged:,}, "
            f"new drugs {result.drugs_created:,}\n"
            f"{result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s"
        )
        if options["verbosity"] and int(str(options["verbosity"])) > 1:
            self.stdout.write(", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items()))
