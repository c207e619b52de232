"""A significant change whose alert was lost after the run's commit is sent again by the beat's sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from dossiers import tasks
from dossiers.models import Candidate, EvidenceChange
from dossiers.services import refresh
from portal.roles import Role
from reviews.models import AuditEvent, Notification
from tests.factories import make_market, make_user
from tests.fakeapi import FakeApi
from tests.refresh.seedfake import route_seed
from tests.refresh.test_refresh_service import _sign_off, refresh_all

pytestmark = pytest.mark.django_db


def test_a_lost_alert_is_sent_by_the_sweep_once_it_is_a_few_minutes_old(
    seed: Candidate, fakeapi: FakeApi, settings, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    route_seed(fakeapi)
    settings.EVIDENCE_ALERT_GRACE = 300
    approver = make_user("approver", Role.APPROVER, markets=[make_market("IN")])
    signoff = _sign_off(seed, approver)
    type(signoff).objects.filter(pk=signoff.pk).update(signed_at=timezone.now() - timedelta(hours=1))
    sent: list[int] = []
    with monkeypatch.context() as broker_down:  # the alert sent after commit goes nowhere
        broker_down.setattr(tasks, "send_evidence_alert", sent.append)
        with django_capture_on_commit_callbacks(execute=True):
            refresh_all(seed)
    assert len(sent) == 1
    lost = EvidenceChange.objects.filter(significant=True, notified_at__isnull=True)
    assert lost.count() == 1

    assert tasks.evidence_alerts_sweep() == 0  # too recent: the normal path may still be on its way
    lost.update(created_at=timezone.now() - timedelta(seconds=301))
    assert tasks.evidence_alerts_sweep() == 1

    assert not lost.exists()
    event = AuditEvent.objects.get(candidate=seed, action="evidence.changed")
    assert Notification.objects.filter(event=event, recipient=approver, reason="evidence_changed").count() == 1
    assert tasks.evidence_alerts_sweep() == 0  # told once


def test_old_changes_are_no_longer_sent(seed: Candidate, fakeapi: FakeApi, settings, monkeypatch) -> None:
    route_seed(fakeapi)
    settings.EVIDENCE_ALERT_MAX_AGE = 3600
    monkeypatch.setattr(tasks, "send_evidence_alert", lambda run_id: None)
    refresh_all(seed)
    EvidenceChange.objects.update(created_at=timezone.now() - timedelta(hours=2))

    assert refresh.unnotified_alert_runs() == []


def test_an_alert_is_not_swallowed_when_the_same_refresh_voided_the_signature_first(
    seed: Candidate, fakeapi: FakeApi, django_capture_on_commit_callbacks
) -> None:
    route_seed(fakeapi)
    approver = make_user("approver", Role.APPROVER, markets=[make_market("IN")])
    _sign_off(seed, approver)
    request_id = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True):  # as a worker does: the drug's task commits first
        refresh.drug_refresh(drug_id=seed.dossier.drug_id, request_id=request_id)
    with django_capture_on_commit_callbacks(execute=True):
        refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)

    assert Notification.objects.filter(recipient=approver, reason="evidence_changed").exists()
