"""Review workflow tables: rounds, assignments, reviews, decisions, sign-offs, comments and the audit trail.

The candidate's status lives on `dossiers.Candidate`; which action may move it from which state is the
`TRANSITIONS` table below, the one place services and `permissions.allowed_actions` read it from.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

from dossiers.models import Candidate, DecisionStage, EvidenceLevel
from dossiers.models import Decision as DecisionChoice

Status = Candidate.Status
ALL_STATES = frozenset(Status)
DECIDED_STATES = frozenset({Status.SIGNED_OFF, Status.CLEARED})

# action -> (states it may start from, state it leads to; None when it keeps the state or decides in code)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "triage": (frozenset({Status.PREDICTED}), Status.TRIAGED),
    "deprioritize": (frozenset({Status.PREDICTED, Status.TRIAGED}), Status.DEPRIORITIZED),
    "revive": (frozenset({Status.DEPRIORITIZED}), Status.PREDICTED),
    "start_curation": (frozenset({Status.TRIAGED}), Status.IN_CURATION),
    "review_assign": (frozenset({Status.IN_CURATION, Status.IN_REVIEW}), None),
    "send_to_review": (frozenset({Status.IN_CURATION}), Status.IN_REVIEW),
    # stays in_review until the last assigned reviewer submits, then in_conflict or decision_pending
    "review_submit": (frozenset({Status.IN_REVIEW}), None),
    "conflict_resolve": (frozenset({Status.IN_CONFLICT}), Status.DECISION_PENDING),
    "sign_off": (frozenset({Status.DECISION_PENDING}), Status.SIGNED_OFF),
    "signature_invalidate": (DECIDED_STATES, Status.DECISION_PENDING),
    # cleared once every condition is met or waived
    "condition_mark_met": (frozenset({Status.SIGNED_OFF}), None),
    "condition_waive": (frozenset({Status.SIGNED_OFF}), None),
    "reopen": (DECIDED_STATES, Status.TRIAGED),
    "comment": (ALL_STATES, None),
    "watch": (ALL_STATES, None),
}


class DeprioritizationReason(models.TextChoices):
    WEAK_BIOMEDICAL = "weak_biomedical", "Weak biomedical rationale"
    WEAK_STRATEGIC = "weak_strategic", "Weak strategic rationale"
    KNOWN_USE = "known_use", "Already approved or known use"
    DUPLICATE = "duplicate", "Duplicate"
    OTHER = "other", "Other"


class ReviewRound(models.Model):
    """One pass of a candidate through curation, review and decision; a reopen starts the next."""

    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="review_rounds")
    number = models.PositiveIntegerField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    curated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who started curation in this round; may not review or sign it.",
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["candidate", "number"]
        constraints = [
            models.UniqueConstraint(fields=["candidate", "number"], name="round_number_unique"),
            models.UniqueConstraint(
                fields=["candidate"], condition=Q(closed_at__isnull=True), name="round_one_open_per_candidate"
            ),
        ]

    def __str__(self) -> str:
        return f"Round {self.number} of candidate {self.candidate_id}"

    @classmethod
    def open_for(cls, candidate: Candidate) -> ReviewRound | None:
        """The candidate's open round, if any (at most one, by constraint)."""
        return cls.objects.filter(candidate=candidate, closed_at__isnull=True).first()


class Deprioritization(models.Model):
    """Why a candidate was set aside; the latest row explains the current deprioritized state."""

    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="deprioritizations")
    reason_code = models.CharField(max_length=20, choices=DeprioritizationReason.choices)
    reason_text = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["candidate", "at", "id"]

    def __str__(self) -> str:
        return f"{self.get_reason_code_display()} ({self.candidate_id})"


class Assignment(models.Model):
    """A reviewer asked to review a candidate in one round."""

    round = models.ForeignKey(ReviewRound, on_delete=models.PROTECT, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_assignments")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(auto_now_add=True)
    due_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["round", "assigned_at", "id"]
        constraints = [models.UniqueConstraint(fields=["round", "reviewer"], name="assignment_unique")]

    def __str__(self) -> str:
        return f"{self.reviewer} on {self.round}"


class Review(models.Model):
    """One reviewer's independent vote in one round."""

    round = models.ForeignKey(ReviewRound, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    recommendation = models.CharField(max_length=12, choices=DecisionChoice.choices)
    evidence_level = models.CharField(max_length=2, choices=EvidenceLevel.choices)
    decision_stage = models.CharField(max_length=2, choices=DecisionStage.choices)
    rationale = models.TextField()
    proposed_conditions = models.JSONField(default=list, blank=True, help_text="List of condition titles.")
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round", "submitted_at", "id"]
        constraints = [models.UniqueConstraint(fields=["round", "reviewer"], name="review_one_per_reviewer")]

    def __str__(self) -> str:
        return f"Review by {self.reviewer} in {self.round}"


class ConflictResolution(models.Model):
    """How a disagreement between reviewers was settled, by an approver or a third reviewer."""

    round = models.OneToOneField(ReviewRound, on_delete=models.PROTECT, related_name="conflict_resolution")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=12, choices=DecisionChoice.choices)
    level = models.CharField(max_length=2, choices=EvidenceLevel.choices)
    stage = models.CharField(max_length=2, choices=DecisionStage.choices)
    note = models.TextField()
    resolved_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Resolution of {self.round}"


class SignOff(models.Model):
    """An electronic signature of a decision over the candidate's content as it was when signed."""

    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="signoffs")
    round = models.ForeignKey(ReviewRound, on_delete=models.PROTECT, related_name="signoffs")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signoffs")
    signer_name = models.CharField(max_length=300, help_text="Full name as signed.")
    signed_at = models.DateTimeField()
    signed_timezone = models.CharField(max_length=64, help_text="Zone the signature time was shown in.")
    meaning = models.CharField(max_length=200, help_text='e.g. "Approved: Proceed with Guardrails".')
    decision = models.CharField(max_length=12, choices=DecisionChoice.choices)
    content = models.JSONField(help_text="The signed content: reviews.signatures.candidate_content().")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the signed content.")
    valid = models.BooleanField(default=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["candidate", "signed_at", "id"]
        constraints = [
            # Two approvers signing at once: the database lets exactly one valid signature in.
            models.UniqueConstraint(fields=["round"], condition=Q(valid=True), name="signoff_one_valid_per_round"),
        ]

    def __str__(self) -> str:
        return f"{self.meaning} — {self.signer_name}"


class AuditEvent(models.Model):
    """One immutable line of a candidate's history: who did what, when, from which state to which.

    Services write these rows themselves (every database); on PostgreSQL a trigger also writes one for
    every other insert, update or delete of the curated dossier tables (see migration 0002).
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database constraint: history outlives the rows it talks about.
    candidate = models.ForeignKey(
        Candidate, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    dossier_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=60, help_text='app_label.model, e.g. "reviews.signoff".')
    object_id = models.CharField(max_length=40, blank=True)
    action = models.CharField(max_length=60, help_text='e.g. "candidate.triage", "row.update".')
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    reason = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["candidate", "at"], name="audit_candidate_at")]
        triggers = [
            pgtrigger.Protect(name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"


class DeliveryState(models.TextChoices):
    """Where one outbox row is on its way to an SMTP server (see reviews.notifications)."""

    PENDING = "pending", "Waiting to be sent"
    DIGEST = "digest", "Waiting for the daily digest"
    SENDING = "sending", "Claimed; handed to SMTP, not yet confirmed"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Not sent (preference off, or no longer visible)"
    FAILED = "failed", "Gave up after repeated errors"


class Notification(models.Model):
    """Outbox: one recipient to tell about one audit event, written in the event's transaction.

    The unique (event, recipient) key lets a retried delivery task claim and send each at most once.
    """

    class Reason(models.TextChoices):
        STATUS_CHANGE = "status_change", "Status change"
        ASSIGNED = "assigned", "Assigned to review"
        MENTIONED = "mentioned", "Mentioned in a comment"
        COMMENT = "comment", "Comment on a watched candidate"
        EVIDENCE = "evidence_changed", "Evidence changed"

    State = DeliveryState

    event = models.ForeignKey(AuditEvent, on_delete=models.PROTECT, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    message_id = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="Message-ID of the email, fixed when claimed."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["event", "recipient"], name="notification_unique")]
        indexes = [
            models.Index(fields=["sent_at"], name="notification_unsent"),
            models.Index(fields=["state", "recipient"], name="notification_state"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} → {self.recipient_id}"


class Comment(models.Model):
    """A note on a candidate; @username mentions are resolved when it is written."""

    candidate = models.ForeignKey(Candidate, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["candidate", "created_at", "id"]

    def __str__(self) -> str:
        return f"Comment by {self.author_id} on {self.candidate_id}"


class Watch(models.Model):
    """A user following a candidate's changes."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="watches")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="watches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["candidate", "user"], name="watch_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.candidate_id}"


class NotificationPreference(models.Model):
    """How one user wants review emails: at once, in one daily digest, or not at all (no row: at once)."""

    class Delivery(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DIGEST = "digest", "One daily digest"
        OFF = "off", "Off"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.delivery}"


class Reminder(models.Model):
    """One reminder email about an overdue assignment or guardrail condition: one per object, person and day."""

    class Kind(models.TextChoices):
        REVIEW_OVERDUE = "review_overdue", "Review overdue"
        CONDITION_OVERDUE = "condition_overdue", "Guardrail condition overdue"

    State = DeliveryState

    kind = models.CharField(max_length=20, choices=Kind.choices)
    object_id = models.BigIntegerField(help_text="Assignment or GuardrailCondition id, by kind.")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The day this reminder is for; the idempotency key with kind and object.")
    due_date = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    message_id = models.CharField(max_length=200, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "recipient", "day"], name="reminder_once_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} → {self.recipient_id} on {self.day}"
