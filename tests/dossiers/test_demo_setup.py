"""`make run` loads the demo with `demo_setup`: it must work on an empty database and again on a loaded one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from dossiers.models import Candidate, Dossier, Prediction
from portal.roles import Role, has_role

pytestmark = pytest.mark.django_db


def _load() -> str:
    out = StringIO()
    call_command("demo_setup", password="demo-pass-1", stdout=out)
    return out.getvalue()


def _client(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password="demo-pass-1")
    return client


def test_demo_loads_twice_and_serves_the_seed_dossier_to_its_team(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    printed = _load()
    counts = (Dossier.objects.count(), Candidate.objects.count(), Prediction.objects.count())
    assert _load() and (Dossier.objects.count(), Candidate.objects.count(), Prediction.objects.count()) == counts

    for username in ("viewer", "curator", "reviewer1", "reviewer2", "approver", "outsider", "admin"):
        assert f"  {username}" in printed and "demo-pass-1" in printed
    assert has_role(User.objects.get(username="approver"), Role.APPROVER)
    seed = Dossier.objects.get(drug__name="Lenalidomide", market__code="IN")
    assert "Myeloid Leukemia" in seed.candidates.values_list("disease", flat=True)
    assert Prediction.objects.filter(market__code="IN").exists()

    page = _client("viewer").get(f"/dossiers/{seed.pk}/")
    assert page.status_code == 200 and "NCT01029262" in page.content.decode()
    canada = Dossier.objects.filter(market__code="CA")
    assert sorted(canada.values_list("drug__name", flat=True)) == ["Atorvastatin", "Cytarabine"]
    assert _client("outsider").get(f"/dossiers/{seed.pk}/").status_code == 404
    assert _client("outsider").get(f"/dossiers/{canada.first().pk}/").status_code == 200  # type: ignore[union-attr]
