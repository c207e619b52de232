"""Imports through the API: upload → job → progress → result or located errors; curators of the market only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from dossiers.api_imports import import_job_task
from dossiers.models import Candidate, Drug, ImportRun, Prediction
from tests.api.conftest import token_client
from tests.celery_worker import WorkerProcess
from tests.reviews.conftest import Personas

pytestmark = pytest.mark.django_db

URL = reverse("api:import-list")
SEED = Path(settings.BASE_DIR) / "demo" / "IN-lenalidomide.txt"
PREDICTIONS = Path(settings.BASE_DIR) / "demo" / "predictions-IN-sample.csv"
BAD_CSV = (
    b"drugbank_id,drug_name,potential_indication,txgnn_score,rank,source\n"
    b"DB00480,Lenalidomide,myeloid leukemia,0.99,1,DL\n"
    b"DB00317,Gefitinib,Kaposi sarcoma,high,2,DL\n"
)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def post(client: APIClient, name: str, content: bytes, kind: str, market: str = "IN"):
    return client.post(URL, {"file": upload(name, content), "kind": kind, "market": market}, format="multipart")


def stored_uploads() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def test_dossier_upload_runs_as_a_job(people: Personas, django_capture_on_commit_callbacks) -> None:
    client = token_client(people.curator)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "IN-lenalidomide.txt", SEED.read_bytes(), "dossier", market="in")
    assert response.status_code == 202, response.json()
    assert response["Location"] == response.json()["url"]
    job = client.get(response["Location"]).json()  # the task ran after the request's commit
    assert (job["status"], job["progress"], job["errors"]) == ("succeeded", {"state": "finished", "percent": 100}, [])
    candidate = Candidate.objects.get()
    assert candidate.disease == "Myeloid Leukemia"
    assert job["result"]["candidate_id"] == candidate.pk and job["result"]["created"] > 0
    assert job["rows_written"] == job["result"]["rows_written"] > 0
    # One row per import: the job is the ImportRun the pages list too.
    run = ImportRun.objects.get()
    assert run.pk == job["id"] and run.created_by == people.curator and run.market == people.market
    assert stored_uploads() == []  # the uploaded copy is dropped once imported


def test_prediction_upload_reports_what_it_wrote(people: Personas, django_capture_on_commit_callbacks) -> None:
    client = token_client(people.curator)
    with django_capture_on_commit_callbacks(execute=True):
        job = post(client, "predictions-IN.csv", PREDICTIONS.read_bytes(), "predictions").json()
    job = client.get(job["url"]).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["inserted"] == Prediction.objects.filter(market=people.market).count() > 0
    assert job["result"]["rows_total"] == 364
    assert ImportRun.objects.count() == 1


def test_job_is_queued_until_the_task_runs(people: Personas, django_capture_on_commit_callbacks) -> None:
    client = token_client(people.curator)
    with django_capture_on_commit_callbacks() as callbacks:
        job = post(client, "predictions-IN.csv", PREDICTIONS.read_bytes(), "predictions").json()
    assert (job["status"], job["progress"], job["result"]) == ("running", {"state": "queued", "percent": 0}, None)
    assert len(stored_uploads()) == 1 and not Prediction.objects.exists()
    for callback in callbacks:
        callback()
    done = client.get(job["url"]).json()
    assert done["status"] == "succeeded" and done["progress"]["percent"] == 100
    # A second delivery of the task message finds the job finished and does nothing.
    assert import_job_task.apply(args=(job["id"],)).get() == "skipped"
    assert client.get(job["url"]).json() == done


def test_bad_dossier_names_file_line_field_and_writes_nothing(people: Personas, django_capture_on_commit_callbacks):
    client = token_client(people.curator)
    bad = SEED.read_bytes().replace(b"| 99.49% |", b"| abc |")
    with django_capture_on_commit_callbacks(execute=True):
        job = post(client, "bad.txt", bad, "dossier").json()
    job = client.get(job["url"]).json()
    assert job["status"] == "failed" and job["result"] is None
    [error] = job["errors"]
    assert (error["file"], error["line"], error["field"]) == ("bad.txt", 12, "TxGNN Prediction Score")
    assert "abc" in error["message"]
    assert not Candidate.objects.exists() and not Drug.objects.exists()
    run = ImportRun.objects.get()  # only the job, marked failed, with the located error
    assert run.status == ImportRun.Status.FAILED and 'bad.txt, line 12, field "TxGNN Prediction Score"' in run.error
    assert stored_uploads() == []


def test_bad_csv_names_line_and_field_and_writes_nothing(people: Personas, django_capture_on_commit_callbacks) -> None:
    client = token_client(people.curator)
    with django_capture_on_commit_callbacks(execute=True):
        job = token_client(people.curator).post(
            URL, {"file": upload("p.csv", BAD_CSV), "kind": "predictions", "market": "IN"}, format="multipart"
        )
    job = client.get(job.json()["url"]).json()
    assert job["status"] == "failed"
    [error] = job["errors"]
    assert (error["file"], error["line"], error["field"]) == ("p.csv", 3, "txgnn_score")
    assert "'high'" in error["message"]
    assert not Prediction.objects.exists() and not Drug.objects.exists()
    assert ImportRun.objects.count() == 1


def test_job_errors_survive_a_cache_flush(people: Personas, django_capture_on_commit_callbacks) -> None:
    from django.core.cache import cache

    client = token_client(people.curator)
    with django_capture_on_commit_callbacks(execute=True):
        job = post(client, "p.csv", BAD_CSV, "predictions").json()
    cache.clear()
    again = client.get(job["url"]).json()
    assert again["status"] == "failed" and again["progress"]["percent"] == 100
    assert 'p.csv, line 3, field "txgnn_score"' in again["errors"][0]["message"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "dossier", "market": "IN"}, "file"),
        ({"kind": "spreadsheet", "market": "IN", "file": b"x"}, "kind"),
        ({"kind": "dossier", "file": b"x"}, "market"),
        ({"kind": "dossier", "market": "IN", "file": b""}, "file"),
    ],
)
def test_invalid_requests_name_the_field(people: Personas, data: dict, field: str) -> None:
    if "file" in data:
        data = {**data, "file": upload("x.txt", data["file"])}
    response = token_client(people.curator).post(URL, data, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"]
    assert not ImportRun.objects.exists() and stored_uploads() == []


def test_permissions(people: Personas, django_capture_on_commit_callbacks) -> None:
    seed = SEED.read_bytes()
    assert post(token_client(people.viewer), "s.txt", seed, "dossier").status_code == 403
    assert post(token_client(people.approver), "s.txt", seed, "dossier").status_code == 403
    assert post(token_client(people.outsider), "s.txt", seed, "dossier").status_code == 404  # India is invisible
    assert post(token_client(people.curator), "s.txt", seed, "dossier", market="ZZ").status_code == 404
    assert APIClient().post(URL, {"kind": "dossier", "market": "IN"}).status_code == 401
    assert not ImportRun.objects.exists() and stored_uploads() == []
    with django_capture_on_commit_callbacks(execute=True):
        job = post(token_client(people.curator), "s.txt", seed, "dossier").json()
    assert token_client(people.viewer).get(job["url"]).status_code == 403
    assert token_client(people.outsider).get(job["url"]).status_code == 404
    assert token_client(people.curator).get(reverse("api:import-detail", args=[job["id"] + 999])).status_code == 404


def test_read_scope_token_cannot_import(people: Personas) -> None:
    client = token_client(people.curator, scope="read")
    assert post(client, "s.txt", SEED.read_bytes(), "dossier").status_code == 403
    assert not ImportRun.objects.exists()


@pytest.mark.postgres
@pytest.mark.services
def test_a_real_worker_runs_the_job(
    transactional_db: None, people: Personas, request: pytest.FixtureRequest, monkeypatch, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "shared-media"
    monkeypatch.setenv("MEDIA_ROOT", str(settings.MEDIA_ROOT))  # the worker reads the same folder
    worker: WorkerProcess = request.getfixturevalue("celery_worker")
    assert worker.proc is not None
    client = token_client(people.curator)
    job = post(client, "predictions-IN.csv", PREDICTIONS.read_bytes(), "predictions").json()
    deadline = time.monotonic() + 60
    while client.get(job["url"]).json()["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    done = client.get(job["url"]).json()
    assert done["status"] == "succeeded", done
    assert done["result"]["inserted"] == Prediction.objects.count() > 0


def test_client_file_names_never_reach_the_file_system(people: Personas, django_capture_on_commit_callbacks) -> None:
    client = token_client(people.curator)
    with django_capture_on_commit_callbacks() as callbacks:
        job = post(client, "../../evil\t.csv", PREDICTIONS.read_bytes(), "predictions").json()
    assert job["file_name"] == "evil.csv"
    assert [path.name for path in stored_uploads()] == [f"{job['id']}.upload"]
    for callback in callbacks:
        callback()
    assert client.get(job["url"]).json()["status"] == "succeeded"
