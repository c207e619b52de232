"""API shapes of the review workflow: one input serializer per action, output serializers per table.

Input serializers check shape only (types, choices, required text); every rule (who, when, gating)
stays in `reviews.services`, which the API calls with the validated values.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dossiers.models import Decision, DecisionStage, EvidenceLevel, GuardrailCondition
from reviews.models import (
    Assignment,
    AuditEvent,
    Comment,
    ConflictResolution,
    DeprioritizationReason,
    Review,
    SignOff,
)

# ---------------------------------------------------------------- shared


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    full_name = serializers.SerializerMethodField()

    def get_full_name(self, user: User) -> str:
        return user.get_full_name() or user.get_username()


class NullableUserRefField(UserRefSerializer):
    """A user reference that may be null (the system, or nobody yet)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)


# ---------------------------------------------------------------- inputs


class EmptyInput(serializers.Serializer):
    """No body needed; an empty JSON object is accepted."""


class DeprioritizeInput(serializers.Serializer):
    reason_code = serializers.ChoiceField(choices=DeprioritizationReason.choices)
    reason_text = serializers.CharField(required=False, allow_blank=True, default="", help_text='Required for "other".')


class ReviveInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReopenInput(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the decided candidate is reviewed again, e.g. new evidence.")


class AssignInput(serializers.Serializer):
    reviewers = serializers.ListField(
        child=serializers.CharField(max_length=150), min_length=1, max_length=20, help_text="Usernames."
    )
    due_date = serializers.DateField(required=False, allow_null=True, default=None)

    def validate_reviewers(self, names: list[str]) -> list[User]:
        users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names)}
        unknown = [name for name in names if name not in users]
        if unknown:
            raise serializers.ValidationError(f"Unknown usernames: {', '.join(unknown)}.")
        return [users[name] for name in dict.fromkeys(names)]


class ReviewInput(serializers.Serializer):
    recommendation = serializers.ChoiceField(choices=Decision.choices)
    evidence_level = serializers.ChoiceField(choices=EvidenceLevel.choices)
    decision_stage = serializers.ChoiceField(choices=DecisionStage.choices)
    rationale = serializers.CharField()
    proposed_conditions = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=50
    )


class ConflictResolveInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    level = serializers.ChoiceField(choices=EvidenceLevel.choices)
    stage = serializers.ChoiceField(choices=DecisionStage.choices)
    note = serializers.CharField()


class SignOffInput(serializers.Serializer):
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="The signer's own password, re-entered: it is what makes this an electronic signature.",
    )
    decision = serializers.ChoiceField(
        choices=Decision.choices, help_text='The signature\'s meaning follows from it: "Approved: <decision>".'
    )


class ConditionMetInput(serializers.Serializer):
    note = serializers.CharField(help_text="Evidence it was met: a note or a link.")


class ConditionWaiveInput(serializers.Serializer):
    justification = serializers.CharField()


class CommentInput(serializers.Serializer):
    body = serializers.CharField(max_length=10000, help_text="Text; @username mentions notify that user.")


# ---------------------------------------------------------------- outputs


class ReviewSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number", read_only=True)
    reviewer = UserRefSerializer(read_only=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "round",
            "reviewer",
            "recommendation",
            "evidence_level",
            "decision_stage",
            "rationale",
            "proposed_conditions",
            "submitted_at",
        ]


class AssignmentSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number", read_only=True)
    reviewer = UserRefSerializer(read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "round", "reviewer", "assigned_at", "due_date"]


class ConflictResolutionSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number", read_only=True)
    resolved_by = UserRefSerializer(read_only=True)

    class Meta:
        model = ConflictResolution
        fields = ["id", "round", "resolved_by", "decision", "level", "stage", "note", "resolved_at"]


class SignOffSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round.number", read_only=True)
    signer = UserRefSerializer(read_only=True)

    class Meta:
        model = SignOff
        fields = [
            "id",
            "round",
            "signer",
            "signer_name",
            "signed_at",
            "signed_timezone",
            "meaning",
            "decision",
            "content_hash",
            "valid",
            "invalidated_at",
            "invalidated_reason",
        ]


class ConditionTrackingSerializer(serializers.ModelSerializer):
    """A guardrail condition with its tracking: owner, due date, resolution."""

    candidate = serializers.IntegerField(source="candidate_id", read_only=True)
    owner = NullableUserRefField()
    resolved_by = NullableUserRefField()

    class Meta:
        model = GuardrailCondition
        fields = [
            "id",
            "candidate",
            "title",
            "detail",
            "category",
            "status",
            "owner",
            "due_date",
            "resolution_note",
            "resolved_at",
            "resolved_by",
        ]


class CommentSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True)
    mentions = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "mentions", "created_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_mentions(self, comment: Comment) -> list[str]:
        return [user.get_username() for user in comment.mentions.all()]


class WatchSerializer(serializers.Serializer):
    watching = serializers.BooleanField(read_only=True)


class ReviewStateSerializer(serializers.Serializer):
    round = serializers.IntegerField(read_only=True, allow_null=True, help_text="Number of the latest round.")
    assigned = serializers.IntegerField(read_only=True, help_text="Reviewers assigned in that round.")
    submitted = serializers.IntegerField(read_only=True, help_text="Of those, how many have submitted.")
    blind = serializers.BooleanField(read_only=True, help_text="True while a vote is missing: others' are hidden.")
    consensus = serializers.ChoiceField(
        choices=["single", "consistent", "conflict", "resolved"],
        read_only=True,
        allow_null=True,
        help_text="Agreement of the round's votes; null while blind or before any round.",
    )


class AllowedActionsSerializer(serializers.Serializer):
    actions = serializers.ListField(child=serializers.CharField(), read_only=True)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = NullableUserRefField()
    candidate = serializers.IntegerField(source="candidate_id", read_only=True, allow_null=True)
    changes = serializers.JSONField(read_only=True, help_text="{field: [before, after]}")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "candidate",
            "dossier_id",
            "object_type",
            "object_id",
            "action",
            "from_state",
            "to_state",
            "reason",
            "changes",
        ]
