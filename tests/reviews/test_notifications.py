"""Review emails: who hears about what, in what words, by which preference; blindness; claims; reminders.

Tasks run inline (eager); `django_capture_on_commit_callbacks(execute=True)` plays the commit that
hands the outbox rows to the delivery task, and `mail.outbox` is what the SMTP server would get.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dossiers.models import Candidate, Decision, GuardrailCondition
from portal.celery import app as celery_app
from reviews import notifications, services
from reviews.models import Assignment, AuditEvent, Notification, NotificationPreference, Reminder
from reviews.tasks import notification_deliver_task
from tests.factories import PASSWORD
from tests.reviews.conftest import Personas, reload, to_in_review, vote

State = Notification.State
Status = Candidate.Status


@pytest.fixture(autouse=True)
def _portal_url(settings: Any) -> None:
    settings.SITE_URL = "https://portal.example.org"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


class Walk:
    """Runs one service call as a committed transaction and returns what it added: audit rows and emails."""

    def __init__(self, candidate: Candidate, capture: Callable[..., Any]) -> None:
        self.candidate = candidate
        self.capture = capture
        self.last_event = 0

    def __call__(self, action: Callable[[], object]) -> tuple[list[tuple[str, str, str, str]], dict[str, str]]:
        sent_before = len(mail.outbox)
        with self.capture(execute=True):
            action()
        events = AuditEvent.objects.filter(candidate=self.candidate, pk__gt=self.last_event).exclude(
            action__startswith="row."
        )
        trail = [(e.action, e.from_state, e.to_state, e.actor.username if e.actor else "") for e in events]
        self.last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        emails = mail.outbox[sent_before:]
        for message in emails:
            assert len(message.to) == 1
        by_user = {message.to[0].split("@")[0]: str(message.subject) for message in emails}
        assert len(by_user) == len(emails), "one email per recipient and event"
        return trail, by_user


def subject(candidate: Candidate, what: str) -> str:
    return f"[Portal] {candidate}: {what}"


def test_one_candidate_from_predicted_to_cleared(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    p, c = people, candidate
    # The outsider watches from an earlier membership of India: seeing nothing of India now, they hear nothing.
    services.Watch.objects.create(candidate=c, user=p.outsider)
    step = Walk(c, django_capture_on_commit_callbacks)
    cid = c.pk

    trail, emails = step(lambda: services.candidate_triage(candidate_id=cid, by=p.curator))
    assert reload(c).status == Status.TRIAGED
    assert trail == [("candidate.triage", "predicted", "triaged", "curator")]
    assert emails == {}  # only the outsider watches, and they may not see it

    trail, emails = step(lambda: services.candidate_start_curation(candidate_id=cid, by=p.curator))
    assert reload(c).status == Status.IN_CURATION
    assert trail == [("candidate.start_curation", "triaged", "in_curation", "curator")]
    assert emails == {}  # the curator is now a watcher, but never told of their own action

    trail, emails = step(
        lambda: services.review_assign(
            candidate_id=cid, by=p.curator, reviewers=[p.reviewer1, p.reviewer2], due_date=dt.date(2030, 1, 1)
        )
    )
    assert trail == [("review.assign", "", "", "curator"), ("review.assign", "", "", "curator")]
    assert emails == {
        "reviewer1": subject(c, "you are assigned to review"),
        "reviewer2": subject(c, "you are assigned to review"),
    }

    trail, emails = step(lambda: services.candidate_send_to_review(candidate_id=cid, by=p.curator))
    assert reload(c).status == Status.IN_REVIEW
    assert trail == [("candidate.send_to_review", "in_curation", "in_review", "curator")]
    sent_to_review = subject(c, "sent to review (Evidence curation → Independent review)")
    assert emails == {"reviewer1": sent_to_review, "reviewer2": sent_to_review}

    trail, emails = step(lambda: vote(c, p.reviewer1))
    assert reload(c).status == Status.IN_REVIEW
    assert trail == [("review.submit", "", "", "reviewer1")]
    assert emails == {}  # a vote is news to nobody while the round is blind

    trail, emails = step(lambda: vote(c, p.reviewer2))
    assert reload(c).status == Status.DECISION_PENDING
    assert trail == [
        ("review.submit", "", "", "reviewer2"),
        ("candidate.review_agree", "in_review", "decision_pending", "reviewer2"),
    ]
    agreed = subject(c, "reviewers agree; decision pending (Independent review → Decision pending)")
    # watchers and the market's approvers; not the actor
    assert emails == {"curator": agreed, "reviewer1": agreed, "approver": agreed, "approver2": agreed}
    assert "Recommended decision: " in mail.outbox[-1].body  # the round is complete: the outcome may be told

    trail, emails = step(
        lambda: services.signoff_create(
            candidate_id=cid, by=p.approver, password=PASSWORD, decision=Decision.GUARDRAILS
        )
    )
    assert reload(c).status == Status.SIGNED_OFF
    assert [t[0] for t in trail] == ["candidate.sign_off"]
    assert trail[0][1:] == ("decision_pending", "signed_off", "approver")
    signed = subject(c, "signed off (Decision pending → Signed off)")
    assert emails == {"curator": signed, "reviewer1": signed, "reviewer2": signed}

    condition = c.conditions.get()
    trail, emails = step(lambda: services.condition_mark_met(condition_id=condition.pk, by=p.curator, note="Done"))
    assert reload(c).status == Status.CLEARED
    assert trail == [
        ("condition.mark_met", "open", "met", "curator"),
        ("candidate.clear", "signed_off", "cleared", "curator"),
    ]
    cleared = subject(c, "cleared (Signed off → Cleared)")
    assert emails == {"reviewer1": cleared, "reviewer2": cleared, "approver": cleared}

    assert not [m for m in mail.outbox if p.outsider.email in m.to]
    assert not Notification.objects.filter(recipient=p.outsider).exists()
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}


def test_signed_off_reopened_and_signed_again(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    p, c, cid = people, candidate, candidate.pk
    with django_capture_on_commit_callbacks(execute=True):
        to_in_review(c, p)
    step = Walk(c, django_capture_on_commit_callbacks)
    step(lambda: vote(c, p.reviewer1))
    step(lambda: vote(c, p.reviewer2))
    step(lambda: services.signoff_create(candidate_id=cid, by=p.approver, password=PASSWORD, decision="guardrails"))
    assert reload(c).status == Status.SIGNED_OFF

    trail, emails = step(lambda: services.candidate_reopen(candidate_id=cid, by=p.approver2, reason="New trial data"))
    assert reload(c).status == Status.TRIAGED
    assert trail == [("candidate.reopen", "signed_off", "triaged", "approver2")]
    reopened = subject(c, "reopened (Signed off → Triaged)")
    assert emails == {"curator": reopened, "reviewer1": reopened, "reviewer2": reopened, "approver": reopened}
    assert "Reason: New trial data" in mail.outbox[-1].body

    step(lambda: services.candidate_start_curation(candidate_id=cid, by=p.curator))
    trail, emails = step(
        lambda: services.review_assign(candidate_id=cid, by=p.curator, reviewers=[p.reviewer1, p.reviewer3])
    )
    assert emails == {
        "reviewer1": subject(c, "you are assigned to review"),
        "reviewer3": subject(c, "you are assigned to review"),
    }
    step(lambda: services.candidate_send_to_review(candidate_id=cid, by=p.curator))
    step(lambda: vote(c, p.reviewer1))
    trail, emails = step(lambda: vote(c, p.reviewer3, decision=Decision.GO))
    assert reload(c).status == Status.IN_CONFLICT
    assert trail[-1] == ("candidate.review_conflict", "in_review", "in_conflict", "reviewer3")
    conflict = subject(c, "reviewers disagree (Independent review → Reviewers disagree)")
    assert emails == {name: conflict for name in ["curator", "reviewer1", "reviewer2", "approver", "approver2"]}

    step(
        lambda: services.conflict_resolve(
            candidate_id=cid, by=p.approver, decision="guardrails", level="L2", stage="S2", note="Guardrails hold"
        )
    )
    trail, emails = step(
        lambda: services.signoff_create(candidate_id=cid, by=p.approver2, password=PASSWORD, decision="guardrails")
    )
    assert reload(c).status == Status.SIGNED_OFF
    assert trail[0][:3] == ("candidate.sign_off", "decision_pending", "signed_off")
    signed = subject(c, "signed off (Decision pending → Signed off)")
    assert emails == {name: signed for name in ["curator", "reviewer1", "reviewer2", "reviewer3", "approver"]}


def test_email_content_link_actor_and_both_parts(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        to_in_review(candidate, people)
    message = mail.outbox[-1]
    url = f"https://portal.example.org{candidate.get_absolute_url()}"
    assert url in message.body
    assert "Curator Tester: sent to review" in message.body
    assert "Status: Evidence curation → Independent review" in message.body
    assert message.body.count("Status:") == 1  # told once, in words, not again as a raw field change
    html, mimetype = message.alternatives[0]  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    assert f'href="{url}"' in str(html)
    assert message.extra_headers["Message-ID"].startswith("<notification.")
    row = Notification.objects.get(recipient=people.reviewer2, event__action="candidate.send_to_review")
    assert row.message_id == message.extra_headers["Message-ID"]
    assert row.sent_at is not None and row.attempts == 1


# ---------------------------------------------------------------- blindness


def _deliver_about(event: AuditEvent, user: Any) -> str:
    services._notify(event, [user], Notification.Reason.STATUS_CHANGE)
    row = Notification.objects.get(event=event, recipient=user)
    notifications.notification_deliver(notification_id=row.pk)
    message = mail.outbox[-1]
    assert isinstance(message, EmailMultiAlternatives)
    return str(message.body) + str(message.alternatives[0][0])


def test_an_email_never_reveals_a_vote_before_the_round_is_complete(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    services.review_submit(
        candidate_id=candidate.pk,
        by=people.reviewer1,
        recommendation=Decision.HOLD,
        evidence_level="L1",
        decision_stage="S3",
        rationale="Secret rationale of reviewer one",
    )
    submitted = AuditEvent.objects.get(candidate=candidate, action="review.submit")
    # Even if someone were told that a vote came in, the email says nothing of what it was.
    text = _deliver_about(submitted, people.reviewer2)
    assert "Secret rationale" not in text and "hold" not in text.lower()
    assert "a review was submitted" in text

    # An event carrying vote fields while the round is still open: the fields stay out of the email.
    leaky = services._audit(
        by=people.approver,
        candidate=candidate,
        action="candidate.note",
        changes={"recommended_decision": ["", "hold"], "evidence_level": ["", "L1"], "title": ["", "New title"]},
    )
    text = _deliver_about(leaky, people.reviewer2)
    assert "New title" in text
    assert "hold" not in text.lower() and "L1" not in text

    vote(candidate, people.reviewer2)  # the round is complete now
    after = services._audit(
        by=people.approver, candidate=candidate, action="candidate.note", changes={"recommended_decision": ["", "x1"]}
    )
    assert "Recommended decision: — → x1" in _deliver_about(after, people.reviewer2)


def test_a_recipient_who_lost_access_is_skipped(people: Personas, candidate: Candidate) -> None:
    event = services._audit(by=people.curator, candidate=candidate, action="candidate.note")
    services._notify(event, [people.reviewer1], Notification.Reason.STATUS_CHANGE)
    people.market.members.remove(people.reviewer1)
    row = Notification.objects.get(event=event)
    assert notifications.notification_deliver(notification_id=row.pk) == State.SKIPPED
    assert mail.outbox == []


# ---------------------------------------------------------------- preferences and digests


def _event_for(
    people: Personas, candidate: Candidate, recipients: list[Any], action: str = "candidate.note"
) -> list[int]:
    event = services._audit(by=people.curator, candidate=candidate, action=action, reason=f"{action} reason")
    services._notify(event, recipients, Notification.Reason.STATUS_CHANGE)
    return list(Notification.objects.filter(event=event).values_list("pk", flat=True))


def test_an_evidence_change_email_names_candidate_and_event(people: Personas, candidate: Candidate) -> None:
    (pk,) = _event_for(people, candidate, [people.approver], "evidence.changed")
    assert notifications.notification_deliver(notification_id=pk) == State.SENT
    assert mail.outbox[-1].subject == subject(candidate, "evidence changed")
    assert "Reason: evidence.changed reason" in mail.outbox[-1].body


def test_preference_off_sends_nothing_and_marks_skipped(people: Personas, candidate: Candidate) -> None:
    notifications.notification_preference_set(user=people.reviewer1, delivery="off")
    (pk,) = _event_for(people, candidate, [people.reviewer1])
    assert notification_deliver_task.delay(pk).get() == State.SKIPPED
    assert mail.outbox == []
    assert Notification.objects.get(pk=pk).state == State.SKIPPED


def test_digest_collects_and_sends_one_email_per_user_once(people: Personas, candidate: Candidate) -> None:
    notifications.notification_preference_set(user=people.reviewer1, delivery="digest")
    ids = [*_event_for(people, candidate, [people.reviewer1, people.reviewer2], "candidate.first")]
    ids += _event_for(people, candidate, [people.reviewer1], "candidate.second")
    for pk in ids:
        notification_deliver_task.delay(pk)
    assert [m.to for m in mail.outbox] == [[people.reviewer2.email]]  # immediate for reviewer2 only
    assert Notification.objects.filter(recipient=people.reviewer1, state=State.DIGEST).count() == 2

    from reviews.tasks import digests_send_task

    assert digests_send_task.delay().get() == 1
    digest = mail.outbox[-1]
    assert digest.to == [people.reviewer1.email]
    assert digest.subject == "[Portal] Daily digest: 2 updates on review candidates"
    assert "first" in digest.body and "second" in digest.body
    assert digest.extra_headers["Message-ID"].startswith("<digest.")
    assert set(Notification.objects.filter(recipient=people.reviewer1).values_list("state", flat=True)) == {State.SENT}
    assert digests_send_task.delay().get() == 0  # nothing left: a second run sends nothing
    assert len(mail.outbox) == 2


def test_a_digest_whose_sender_died_is_sent_again_alone_with_its_message_id(
    people: Personas, candidate: Candidate, settings: Any
) -> None:
    notifications.notification_preference_set(user=people.reviewer1, delivery="digest")
    first = _event_for(people, candidate, [people.reviewer1], "candidate.first")
    later = _event_for(people, candidate, [people.reviewer1], "candidate.later")
    for pk in first + later:
        notifications.notification_deliver(notification_id=pk)
    # a digest sender claimed the first row and died before marking it sent
    Notification.objects.filter(pk__in=first).update(
        state=State.SENDING, message_id="<digest.lost@portal>", claimed_at=timezone.now(), attempts=1
    )
    assert notifications.digest_recipients_stuck() == []  # its lease still runs
    assert notifications.digest_send(user_id=people.reviewer1.pk) == 1  # only the waiting row
    assert "later" in mail.outbox[-1].body and "first" not in mail.outbox[-1].body

    old = timezone.now() - timedelta(seconds=settings.NOTIFICATION_SENDING_LEASE + 1)
    Notification.objects.filter(pk__in=first).update(claimed_at=old)
    assert notifications.digest_recipients_stuck() == [people.reviewer1.pk]
    assert notifications.digest_send(user_id=people.reviewer1.pk) == 1
    assert mail.outbox[-1].extra_headers["Message-ID"] == "<digest.lost@portal>"
    assert "first" in mail.outbox[-1].body
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}
    assert notifications.digest_send(user_id=people.reviewer1.pk) == 0


def test_bad_preference_is_refused(people: Personas) -> None:
    with pytest.raises(notifications.ValidationError, match="'weekly' is not one of immediate, digest, off"):
        notifications.notification_preference_set(user=people.reviewer1, delivery="weekly")
    assert not NotificationPreference.objects.exists()


# ---------------------------------------------------------------- claims, retries


def test_delivering_twice_sends_once(people: Personas, candidate: Candidate) -> None:
    (pk,) = _event_for(people, candidate, [people.reviewer1])
    assert notifications.notification_deliver(notification_id=pk) == State.SENT
    assert notifications.notification_deliver(notification_id=pk) == State.SENT
    assert len(mail.outbox) == 1


def test_a_live_claim_is_left_alone_and_a_dead_one_resent_with_its_message_id(
    people: Personas, candidate: Candidate, settings: Any
) -> None:
    (pk,) = _event_for(people, candidate, [people.reviewer1])
    Notification.objects.filter(pk=pk).update(
        state=State.SENDING, claimed_at=timezone.now(), message_id="<kept@portal>", attempts=1
    )
    with pytest.raises(notifications.StillClaimed):
        notifications.notification_deliver(notification_id=pk)
    assert mail.outbox == []
    assert notifications.due_for_retry() == ([], [])

    old = timezone.now() - timedelta(seconds=settings.NOTIFICATION_SENDING_LEASE + 1)
    Notification.objects.filter(pk=pk).update(claimed_at=old)
    assert notifications.due_for_retry() == ([pk], [])
    assert notifications.notification_deliver(notification_id=pk) == State.SENT
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == ["<kept@portal>"]
    assert Notification.objects.get(pk=pk).attempts == 2


class RefusingBackend:
    """An SMTP backend whose server refuses every message."""

    def __init__(self, **kwargs: Any) -> None:
        pass

    def open(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def send_messages(self, messages: list[Any]) -> int:
        raise smtplib.SMTPServerDisconnected("server went away")


def test_smtp_errors_release_the_claim_until_the_last_attempt(
    people: Personas, candidate: Candidate, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    (pk,) = _event_for(people, candidate, [people.reviewer1])
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notifications.notification_deliver(notification_id=pk)
    row = Notification.objects.get(pk=pk)
    assert (row.state, row.attempts, row.last_error) == (State.PENDING, 1, "SMTPServerDisconnected: server went away")
    first_id = row.message_id
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notifications.notification_deliver(notification_id=pk)
    row = Notification.objects.get(pk=pk)
    assert (row.state, row.attempts, row.message_id) == (State.FAILED, 2, first_id)
    assert notifications.notification_deliver(notification_id=pk) == State.FAILED


def test_the_task_retries_smtp_errors_with_backoff_then_gives_up(
    people: Personas, candidate: Candidate, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    (pk,) = _event_for(people, candidate, [people.reviewer1])
    with pytest.raises(Retry) as retry:
        notification_deliver_task.delay(pk)
    assert retry.value.when == 30  # the first backoff step; it doubles each time, up to 600 s
    assert Notification.objects.get(pk=pk).state == State.PENDING
    # the last allowed attempt: the row is failed and the task stops retrying
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notification_deliver_task.apply(args=(pk,), retries=1, throw=True)
    assert Notification.objects.get(pk=pk).state == State.FAILED
    assert Notification.objects.get(pk=pk).attempts == 2


# ---------------------------------------------------------------- overdue reminders


def test_overdue_reviews_and_conditions_remind_their_owner_once_a_day(
    people: Personas, candidate: Candidate, settings: Any
) -> None:
    from reviews.tasks import reminders_create_task

    to_in_review(candidate, people)
    Assignment.objects.filter(reviewer=people.reviewer1).update(due_date=dt.date(2029, 12, 1))
    # no due date: due REVIEW_DUE_DAYS after assignment
    Assignment.objects.filter(reviewer=people.reviewer2).update(
        due_date=None, assigned_at=dt.datetime(2029, 12, 20, tzinfo=dt.UTC)
    )
    settings.REVIEW_DUE_DAYS = 14
    GuardrailCondition.objects.update(due_date=dt.date(2029, 12, 30))
    mail.outbox.clear()

    def run(day: dt.date) -> list[tuple[str, str]]:
        before = len(mail.outbox)
        ids = notifications.reminders_create(today=day)
        for pk in ids:
            notifications.reminder_deliver(reminder_id=pk)
        return sorted((m.to[0].split("@")[0], str(m.subject)) for m in mail.outbox[before:])

    assert run(dt.date(2029, 12, 1)) == []  # due today is not overdue
    c = str(candidate)
    assert run(dt.date(2029, 12, 2)) == [("reviewer1", f"[Portal] {c}: review overdue (1 day late)")]
    assert run(dt.date(2029, 12, 2)) == []  # once a day, however often the job runs
    assert run(dt.date(2030, 1, 4)) == [
        ("curator", f"[Portal] {c}: guardrail condition overdue (5 days late)"),
        ("reviewer1", f"[Portal] {c}: review overdue (34 days late)"),
        ("reviewer2", f"[Portal] {c}: review overdue (1 day late)"),
    ]
    assert "condition “Confirm label warnings”" in next(m.body for m in mail.outbox if m.to == [people.curator.email])
    vote(candidate, people.reviewer1)  # a submitted review is no longer overdue
    notifications.notification_preference_set(user=people.curator, delivery="off")
    assert run(dt.date(2030, 1, 5)) == [("reviewer2", f"[Portal] {c}: review overdue (2 days late)")]
    assert Reminder.objects.filter(recipient=people.curator, day=dt.date(2030, 1, 5)).get().state == State.SKIPPED
    assert reminders_create_task.delay().get() >= 0  # the beat entry point runs


# ---------------------------------------------------------------- settings page and schedule


def test_notification_settings_page(people: Personas, client: Client) -> None:
    url = reverse("notification_settings")
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(people.reviewer1)
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["form"]["delivery"].value() == "immediate"
    assert b'value="immediate" id="id_delivery_0" required checked' in page.content
    response = client.post(url, {"delivery": "digest"})
    assert response.status_code == 302
    assert notifications.preference_of(people.reviewer1) == "digest"
    assert client.post(url, {"delivery": "weekly"}).status_code == 200
    assert notifications.preference_of(people.reviewer1) == "digest"


def test_beat_schedule_names_registered_tasks(settings: Any) -> None:
    import reviews.tasks  # noqa: F401  (registers the tasks)

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"reviews.notifications_sweep", "reviews.digests_send", "reviews.reminders_create"} <= names
    assert {"reviews.notifications_sweep", "reviews.digests_send", "reviews.reminders_create"} <= set(celery_app.tasks)


def test_a_lease_shorter_than_a_slow_send_fails_at_start() -> None:
    env = {
        **os.environ,
        "EMAIL_TIMEOUT": "10",
        "NOTIFICATION_SENDING_LEASE": "60",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "NOTIFICATION_SENDING_LEASE=60 must exceed 6 × EMAIL_TIMEOUT (60s)" in result.stderr
