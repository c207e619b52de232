"""The curators' import page: role matrix, dossier and prediction uploads, errors, size limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError
from django.test import Client, override_settings
from django.urls import reverse

from dossiers import views
from dossiers.models import Candidate, ImportRun, Prediction
from portal.roles import Role
from tests.factories import PASSWORD, make_market, make_user

pytestmark = pytest.mark.django_db

URL = reverse("dossiers:import_upload")
SEED = Path(settings.BASE_DIR) / "demo" / "IN-lenalidomide.txt"


def client_for(*roles: Role) -> Client:
    client = Client()
    user = make_user(None, *roles, markets=[make_market("IN", "India")])
    assert client.login(username=user.username, password=PASSWORD)
    return client


def seed_upload(name: str = "IN-lenalidomide.txt", content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, SEED.read_bytes() if content is None else content, content_type="text/plain")


def test_anonymous_is_sent_to_login() -> None:
    for response in (Client().get(URL), Client().post(URL, {"kind": "dossier", "file": seed_upload()})):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER, Role.APPROVER])
def test_non_curators_are_forbidden(role: Role) -> None:
    client = client_for(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"kind": "dossier", "file": seed_upload()}).status_code == 403
    assert not ImportRun.objects.exists() and not Candidate.objects.exists()


def test_curator_imports_a_dossier_report() -> None:
    client = client_for(Role.CURATOR)
    assert client.get(URL).status_code == 200
    response = client.post(URL, {"kind": "dossier", "file": seed_upload(), "market_code": "in"}, follow=True)
    assert response.redirect_chain[-1] == (URL, 302)
    assert Candidate.objects.get().disease == "Myeloid Leukemia"
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.SUCCEEDED and run.created_by is not None
    page = response.content.decode()
    assert "IN-lenalidomide.txt: Succeeded" in page and "Recent imports" in page
    again = client.post(URL, {"kind": "dossier", "file": seed_upload()}, follow=True)
    assert "Unchanged" in again.content.decode()
    assert Candidate.objects.count() == 1


def test_bad_report_shows_the_error_and_lists_the_failed_run() -> None:
    client = client_for(Role.CURATOR)
    bad = SEED.read_bytes().replace(b"| 99.49% |", b"| abc |")
    response = client.post(URL, {"kind": "dossier", "file": seed_upload("bad.txt", bad)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "bad.txt, line 12, field &quot;TxGNN Prediction Score&quot;: &quot;abc&quot; is not a score" in page
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED
    assert not Candidate.objects.exists()


def test_over_long_value_shows_file_line_and_field_not_a_server_error() -> None:
    # On PostgreSQL this used to reach the database: DataError (varchar(30)) and a 500 page.
    client = client_for(Role.CURATOR)
    bad = SEED.read_bytes().replace(b"| Phase 2/3 |", b"| Phase 2/3 (adaptive, seamless, multi-arm) |")
    response = client.post(URL, {"kind": "dossier", "file": seed_upload("long.txt", bad)})
    assert response.status_code == 200
    assert "long.txt, line 26, field &quot;Phase&quot;" in response.content.decode()
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED
    assert not Candidate.objects.exists()


@pytest.mark.parametrize("error", [DataError("integer out of range"), RuntimeError("disk full")])
def test_an_unexpected_import_error_is_shown_not_a_server_error(
    error: Exception, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(**kwargs: object) -> str:
        raise error

    monkeypatch.setattr(views, "upload_import", fail)
    client = client_for(Role.CURATOR)
    response = client.post(URL, {"kind": "dossier", "file": seed_upload("x.txt")})
    assert response.status_code == 200
    page = response.content.decode()
    assert "x.txt could not be imported (internal error); nothing was written" in page
    assert str(error) not in page  # internals go to the log, not to the page
    assert "import of x.txt failed unexpectedly" in caplog.text


@override_settings(IMPORT_UPLOAD_MAX_BYTES=1000)
def test_uploads_over_the_limit_are_refused() -> None:
    client = client_for(Role.CURATOR)
    response = client.post(URL, {"kind": "dossier", "file": seed_upload()})
    assert response.status_code == 200
    assert "uploads are limited to 1000" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_curator_imports_a_prediction_csv() -> None:
    client = client_for(Role.CURATOR)
    csv = (
        b"drugbank_id,drug_name,potential_indication,txgnn_score,rank,source\n"
        b"DB00480,Lenalidomide,myeloid leukemia,0.9949,1,DL\n"
        b"DB00480,Lenalidomide,mantle cell lymphoma,0.9921,2,DL\n"
    )
    upload = SimpleUploadedFile("p.csv", csv, content_type="text/csv")
    response = client.post(URL, {"kind": "predictions", "file": upload, "market_code": "IN"}, follow=True)
    assert response.redirect_chain[-1] == (URL, 302)
    assert Prediction.objects.filter(market__code="IN").count() == 2
    assert ImportRun.objects.get(kind=ImportRun.Kind.PREDICTIONS).file_name == "p.csv"


def test_prediction_csv_needs_a_market_code() -> None:
    client = client_for(Role.CURATOR)
    upload = SimpleUploadedFile("p.csv", b"drugbank_id\n", content_type="text/csv")
    response = client.post(URL, {"kind": "predictions", "file": upload})
    assert "needs the market code" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_page_query_count_does_not_grow_with_runs(django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    client = client_for(Role.CURATOR)
    client.post(URL, {"kind": "dossier", "file": seed_upload()})
    with django_assert_max_num_queries(8):
        client.get(URL)
    for index in range(5):
        client.post(URL, {"kind": "dossier", "file": seed_upload(f"again{index}.txt")})
    with django_assert_max_num_queries(8):
        assert client.get(URL).content.decode().count("<td>again") == 5
