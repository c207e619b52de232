"""Sending refresh tasks: never a countdown; the nightly batch goes through the dispatcher a batch at a time."""

from __future__ import annotations

from typing import Any

import pytest
from kombu.exceptions import OperationalError as BrokerDown

from dossiers import tasks
from dossiers.models import Candidate, RefreshRun
from dossiers.services import refresh
from portal.celery import app as celery_app
from portal.roles import Role
from tests.factories import make_candidate, make_dossier, make_market, make_user

pytestmark = pytest.mark.django_db

Status = RefreshRun.Status


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Record the refresh tasks sent instead of running them: (task name, args, options)."""
    calls: list[tuple[str, list[Any], dict[str, Any]]] = []
    for task in (tasks.refresh_candidate, tasks.refresh_drug):

        def record(args: list[Any], _name: str = task.name, **options: Any) -> None:
            calls.append((_name, args, options))

        monkeypatch.setattr(task, "apply_async", record)
    return calls


def _candidates(count: int) -> list[Candidate]:
    market = make_market("IN")
    return [make_candidate(make_dossier(market=market)) for _ in range(count)]


def test_the_nightly_batch_is_sent_a_batch_at_a_time_without_countdowns(
    sent: list, settings, django_capture_on_commit_callbacks
) -> None:
    settings.EVIDENCE_REFRESH_BATCH = 4
    candidates = _candidates(5)  # 5 candidates of 5 drugs: 10 tasks in all

    with django_capture_on_commit_callbacks(execute=True):
        request = refresh.nightly_refresh_request(day="2026-12-01")

    assert len(sent) == 4 and all("countdown" not in o and "eta" not in o for _, _, o in sent)
    assert [name for name, _, _ in sent] == ["dossiers.refresh_drug"] * 4  # drugs first: names normalised first
    assert all(o["queue"] == "sources" for _, _, o in sent)
    assert tasks.refresh_dispatch() == 0  # four sent and unfinished: no room
    # two of them finish: the next beat tick sends two more
    done = [args[0] for _, args, _ in sent[:2]]
    RefreshRun.objects.filter(request_id=request.request_id, drug_id__in=done).update(status=Status.SUCCESS)
    assert tasks.refresh_dispatch() == 2
    assert [name for name, _, _ in sent[4:]] == ["dossiers.refresh_drug", "dossiers.refresh_candidate"]
    assert list(sent[5][1]) == [candidates[0].pk, str(request.request_id)]
    waiting = RefreshRun.objects.filter(request_id=request.request_id, enqueued_at__isnull=True)
    assert waiting.count() == 2 * 4  # four candidates (two runs each) wait for the dispatcher


def test_a_button_press_sends_its_two_tasks_at_once_without_countdown(
    sent: list, django_capture_on_commit_callbacks
) -> None:
    (candidate,) = _candidates(1)
    curator = make_user("curator", Role.CURATOR, markets=[candidate.dossier.market])

    with django_capture_on_commit_callbacks(execute=True):
        request = refresh.candidate_refresh_request(candidate_id=candidate.pk, by=curator)

    assert [(name, options) for name, _, options in sent] == [
        ("dossiers.refresh_drug", {"queue": "sources"}),
        ("dossiers.refresh_candidate", {"queue": "sources"}),
    ]
    assert not RefreshRun.objects.filter(request_id=request.request_id, enqueued_at__isnull=True).exists()


def test_a_request_the_broker_refused_is_sent_by_the_dispatcher(
    sent: list, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    (candidate,) = _candidates(1)
    curator = make_user("curator", Role.CURATOR, markets=[candidate.dossier.market])

    def down(*args: Any, **kwargs: Any) -> None:
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    with monkeypatch.context() as broken:
        broken.setattr(tasks.refresh_drug, "apply_async", down)
        with django_capture_on_commit_callbacks(execute=True):
            request = refresh.candidate_refresh_request(candidate_id=candidate.pk, by=curator)  # no 500

    runs = RefreshRun.objects.filter(request_id=request.request_id)
    assert runs.count() == 4 and not runs.filter(enqueued_at__isnull=False).exists()
    assert tasks.refresh_dispatch() == 2
    assert [name for name, _, _ in sent] == ["dossiers.refresh_drug", "dossiers.refresh_candidate"]
    assert not runs.filter(enqueued_at__isnull=True).exists()


def test_inline_without_a_broker_the_dispatcher_runs_every_batch(
    settings, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    settings.EVIDENCE_REFRESH_BATCH = 2
    _candidates(3)
    ran: list[str] = []

    def run(**subject: Any) -> list:
        ran.append(next(iter(subject)))
        RefreshRun.objects.filter(**{k: v for k, v in subject.items()}).update(status=Status.SUCCESS)
        return []

    monkeypatch.setattr(
        refresh, "candidate_refresh", lambda *, candidate_id, request_id: run(candidate_id=candidate_id)
    )
    monkeypatch.setattr(refresh, "drug_refresh", lambda *, drug_id, request_id: run(drug_id=drug_id))
    with django_capture_on_commit_callbacks(execute=True):
        refresh.nightly_refresh_request(day="2026-12-02")

    assert sorted(ran) == ["candidate_id"] * 3 + ["drug_id"] * 3
    assert not RefreshRun.objects.exclude(status=Status.SUCCESS).exists()
