"""Load the demo: role groups, two markets, one user per role, the seed, two Canadian reports, predictions."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from dossiers.models import Market, Prediction
from dossiers.services.candidates import candidate_promote
from dossiers.services.dossier_import import dossier_import
from dossiers.services.prediction_import import predictions_import
from portal.roles import Role, ensure_role_groups

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
# Two published Canadian reports (see tests/fixtures/reports/SOURCES.md), for a second market to look at.
PUBLISHED_REPORTS = Path(settings.BASE_DIR) / "tests" / "fixtures" / "reports"
CANADA_REPORTS = ("CA-atorvastatin.md", "CA-cytarabine.md")
MARKETS = [
    {"code": "IN", "name": "India", "regulator": "CDSCO", "registration_term": "registrations"},
    {"code": "CA", "name": "Canada", "regulator": "Health Canada", "registration_term": "DINs"},
]
# username, full name, roles, markets
PERSONAS = [
    ("viewer", "Vera Viewer", [Role.VIEWER], ["IN"]),
    ("curator", "Carla Curator", [Role.CURATOR], ["IN"]),
    ("reviewer1", "Ravi Reviewer", [Role.REVIEWER], ["IN"]),
    ("reviewer2", "Rosa Reviewer", [Role.REVIEWER], ["IN"]),
    ("approver", "Anil Approver", [Role.APPROVER], ["IN"]),
    ("outsider", "Otto Outsider", [Role.CURATOR, Role.REVIEWER], ["CA"]),
    ("admin", "Ada Admin", [Role.ADMIN], []),
]
PROMOTED_PER_MARKET = 15


class Command(BaseCommand):
    help = "Load demo data and (re)set one demo user per role; prints the logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", help="Use this password for every demo user (default: random).")

    def handle(self, *args, **options) -> None:
        ensure_role_groups()
        for spec in MARKETS:
            Market.objects.update_or_create(code=spec["code"], defaults=spec)
        logins = self._users(options.get("password"))
        dossier_import(
            path_or_file=DEMO_DIR / "IN-lenalidomide.txt", file_name="IN-lenalidomide.txt", market_code="IN", by=None
        )
        for name in CANADA_REPORTS:
            dossier_import(path_or_file=PUBLISHED_REPORTS / name, file_name=name, market_code="CA", by=None)
        predictions_import(
            path=DEMO_DIR / "predictions-IN-sample.csv", file_name="predictions-IN-sample.csv", market_code="IN"
        )
        self._promote_top_predictions("IN")
        self._print_logins(logins)

    @transaction.atomic
    def _users(self, password: str | None) -> list[tuple[str, str, str]]:
        logins = []
        for username, full_name, roles, market_codes in PERSONAS:
            first, last = full_name.split(" ", 1)
            user, _ = User.objects.get_or_create(username=username)
            user.first_name, user.last_name, user.email = first, last, f"{username}@example.org"
            user.is_staff = Role.ADMIN in roles or Role.CURATOR in roles
            user.is_superuser = Role.ADMIN in roles
            secret = password or secrets.token_urlsafe(9)
            user.set_password(secret)
            user.save()
            user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
            user.markets.set(Market.objects.filter(code__in=market_codes))
            logins.append((username, secret, ", ".join(r.label for r in roles)))
        return logins

    def _promote_top_predictions(self, market_code: str) -> None:
        top = Prediction.objects.filter(market__code=market_code).order_by("-score")[:PROMOTED_PER_MARKET]
        for prediction_id in top.values_list("pk", flat=True):
            candidate_promote(prediction_id=prediction_id, by=None)

    def _print_logins(self, logins: list[tuple[str, str, str]]) -> None:
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Log in at http://127.0.0.1:8000/ as:"))
        for username, secret, roles in logins:
            self.stdout.write(f"  {username:<10} {secret:<14} {roles}")
