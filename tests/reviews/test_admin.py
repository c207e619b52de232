"""Review workflow admin: read-only screens, audit trail untouchable, actions that call the services."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dossiers.models import Candidate, Decision
from portal.roles import Role
from reviews import services
from reviews.models import AuditEvent, Notification, NotificationPreference, Reminder, SignOff
from tests.dossiers.test_admin import admin_form_data
from tests.factories import make_candidate, make_user
from tests.reviews.conftest import Personas, reload, to_in_review, to_signed_off, vote

pytestmark = pytest.mark.django_db
PAGE_QUERY_LIMIT = 15


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.org", "x")


@pytest.fixture
def signed(candidate: Candidate, people: Personas) -> Candidate:
    """A signed-off candidate with a comment, a watcher, notifications and a reminder; two more candidates.

    One sibling is deprioritized and the other had its reviewers' conflict resolved, so every reviews table
    has a row.
    """
    to_signed_off(candidate, people)
    aside = make_candidate(candidate.dossier, "Myelofibrosis")
    services.candidate_deprioritize(candidate_id=aside.pk, by=people.curator, reason_code="duplicate")
    disputed = make_candidate(candidate.dossier, "Mantle cell lymphoma")
    to_in_review(disputed, people)
    vote(disputed, people.reviewer1, Decision.GO, "L2")
    vote(disputed, people.reviewer2, Decision.HOLD, "L3")
    services.conflict_resolve(
        candidate_id=disputed.pk, by=people.approver2, decision=Decision.HOLD, level="L3", stage="S1", note="Wait."
    )
    services.comment_add(candidate_id=candidate.pk, by=people.reviewer1, body="Looks fine @approver")
    NotificationPreference.objects.create(user=people.reviewer1, delivery="digest")
    condition = candidate.conditions.get()
    assert condition.due_date is not None
    Reminder.objects.create(
        kind="condition_overdue",
        object_id=condition.pk,
        candidate=candidate,
        recipient=people.curator,
        day=condition.due_date,
        due_date=condition.due_date,
    )
    return reload(candidate)


def _urls(model: type[models.Model]) -> tuple[str, str]:
    meta = model._meta
    return (f"admin:{meta.app_label}_{meta.model_name}_changelist", f"admin:{meta.app_label}_{meta.model_name}_change")


def test_every_reviews_model_is_registered() -> None:
    missing = [m.__name__ for m in apps.get_app_config("reviews").get_models() if m not in admin.site._registry]
    assert missing == []


def test_every_page_renders_read_only_for_a_superuser(signed: Candidate, root: User) -> None:
    client = client_for(root)
    for model in apps.get_app_config("reviews").get_models():
        obj = model._default_manager.first()  # type: ignore[attr-defined]
        assert obj is not None, model.__name__
        changelist, change = _urls(model)
        for url in [reverse(changelist), reverse(change, args=[obj.pk])]:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200, url
            assert len(queries) <= PAGE_QUERY_LIMIT, (url, len(queries))
        assert 'name="_save"' not in response.content.decode(), model.__name__


def test_audit_changelist_queries_do_not_grow_with_events(signed: Candidate, people: Personas, root: User) -> None:
    client = client_for(root)
    url = reverse("admin:reviews_auditevent_changelist")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    before = count()
    for i in range(10):
        services.comment_add(candidate_id=signed.pk, by=people.reviewer2, body=f"note {i}")
    assert count() == before


def test_audit_events_cannot_be_added_changed_or_deleted(signed: Candidate, root: User) -> None:
    client = client_for(root)
    event = AuditEvent.objects.filter(candidate=signed).first()
    assert event is not None
    before = AuditEvent.objects.count()
    assert client.get(reverse("admin:reviews_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:reviews_auditevent_change", args=[event.pk]), {"reason": "x"}).status_code == 403
    assert client.post(reverse("admin:reviews_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    response = client.post(
        reverse("admin:reviews_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)  # "no such action": nothing happens
    assert AuditEvent.objects.count() == before
    assert AuditEvent.objects.get(pk=event.pk).reason == event.reason


def test_audit_list_filters_by_kind_candidate_and_actor(signed: Candidate, people: Personas, root: User) -> None:
    client = client_for(root)
    url = reverse("admin:reviews_auditevent_changelist")
    by_candidate = client.get(url, {"candidate__id__exact": str(signed.pk), "kind": "workflow"})
    assert by_candidate.status_code == 200
    shown = list(by_candidate.context["cl"].result_list)
    assert shown and all(e.candidate_id == signed.pk and not e.action.startswith("row.") for e in shown)
    by_actor = client.get(url, {"actor__id__exact": people.approver.pk})
    assert {e.action for e in by_actor.context["cl"].result_list} == {"candidate.sign_off"}
    found = client.get(url, {"q": "sign_off"})
    assert [e.action for e in found.context["cl"].result_list] == ["candidate.sign_off"]


def test_curator_without_reviews_permissions_cannot_open_the_audit_admin(people: Personas) -> None:
    people.curator.is_staff = True
    people.curator.save()
    assert client_for(people.curator).get(reverse("admin:reviews_auditevent_changelist")).status_code == 403


def test_admin_role_sees_only_read_only_workflow_rows(signed: Candidate) -> None:
    admin_user = make_user("boss", Role.ADMIN, is_staff=True)
    client = client_for(admin_user)
    signoff = SignOff.objects.get(candidate=signed)
    assert client.get(reverse("admin:reviews_signoff_change", args=[signoff.pk])).status_code == 200
    data = {"meaning": "Forged", "valid": "on"}
    assert client.post(reverse("admin:reviews_signoff_change", args=[signoff.pk]), data).status_code == 403
    assert SignOff.objects.get(pk=signoff.pk).meaning == signoff.meaning
    notification = Notification.objects.first()
    assert notification is not None
    url = reverse("admin:reviews_notification_delete", args=[notification.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403


# Actions that call reviews.services


def test_triage_action_calls_the_service(candidate: Candidate, people: Personas) -> None:
    people.curator.is_staff = True
    people.curator.save()
    response = client_for(people.curator).post(
        reverse("admin:dossiers_candidate_changelist"),
        {"action": "triage", "_selected_action": [candidate.pk]},
        follow=True,
    )
    assert "1 candidate(s) triaged" in response.content.decode()
    assert reload(candidate).status == "triaged"
    event = AuditEvent.objects.get(candidate=candidate, action="candidate.triage")
    assert (event.actor, event.from_state, event.to_state) == (people.curator, "predicted", "triaged")


def test_action_refusals_are_reported_and_change_nothing(candidate: Candidate, people: Personas) -> None:
    people.viewer.is_staff = True
    people.viewer.save()
    response = client_for(people.viewer).post(
        reverse("admin:dossiers_candidate_changelist"),
        {"action": "start_curation", "_selected_action": [candidate.pk]},
        follow=True,
    )
    assert "Only a curator of this market can curate" in response.content.decode()
    assert reload(candidate).status == "predicted"


def test_curation_edit_of_signed_content_voids_the_signature(signed: Candidate, people: Personas) -> None:
    people.curator.is_staff = True
    people.curator.save()
    client = client_for(people.curator)
    url = reverse("admin:dossiers_candidate_change", args=[signed.pk])
    response = client.post(url, admin_form_data(client.get(url), rationale="New evidence changes the rationale."))
    assert response.status_code == 302
    candidate = reload(signed)
    assert candidate.status == "decision_pending"
    signoff = SignOff.objects.get(candidate=signed)
    assert not signoff.valid and "candidate" in signoff.invalidated_reason
    assert AuditEvent.objects.filter(candidate=signed, action="candidate.signature_invalidate").exists()


def test_signature_check_action(signed: Candidate, root: User) -> None:
    signoff = SignOff.objects.get(candidate=signed)
    url = reverse("admin:reviews_signoff_changelist")
    client = client_for(root)
    client.post(url, {"action": "check_signature", "_selected_action": [signoff.pk]})
    assert SignOff.objects.get(pk=signoff.pk).valid  # nothing changed yet
    Candidate.objects.filter(pk=signed.pk).update(summary="Edited behind the admin's back.")
    response = client.post(url, {"action": "check_signature", "_selected_action": [signoff.pk]}, follow=True)
    assert "1 signature(s) voided" in response.content.decode()
    assert not SignOff.objects.get(pk=signoff.pk).valid


def test_candidate_change_page_links_to_its_audit_trail(signed: Candidate, root: User) -> None:
    page = client_for(root).get(reverse("admin:dossiers_candidate_change", args=[signed.pk])).content.decode()
    assert f"{reverse('admin:reviews_auditevent_changelist')}?candidate__id__exact={signed.pk}" in page
