"""Forms of the workflow pages: validation and rendering only; the services decide and write."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db.models import QuerySet

from dossiers.models import Decision, DecisionStage, EvidenceLevel
from reviews.models import DeprioritizationReason
from reviews.signatures import signature_meaning

# No preselected level or stage: a reviewer must choose, not accept a default by accident.
CHOOSE = ("", "Choose…")


class ConfirmForm(forms.Form):
    """A button with nothing to fill in (triage, start curation, send to review, watch)."""


class DeprioritizeForm(forms.Form):
    reason_code = forms.ChoiceField(label="Reason", choices=DeprioritizationReason.choices)
    reason_text = forms.CharField(
        label="Details", required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text='Required for "Other".'
    )


class ReviveForm(forms.Form):
    reason = forms.CharField(label="Why revive", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReviewerChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.get_full_name() or obj.get_username()} (@{obj.get_username()})"


class AssignForm(forms.Form):
    reviewers = ReviewerChoiceField(queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple)
    due_date = forms.DateField(label="Due", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, reviewers: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewers  # type: ignore[attr-defined]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class ReviewForm(forms.Form):
    recommendation = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    evidence_level = forms.ChoiceField(label="Evidence level", choices=[CHOOSE, *EvidenceLevel.choices])
    decision_stage = forms.ChoiceField(label="Decision stage", choices=[CHOOSE, *DecisionStage.choices])
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    proposed_conditions = forms.CharField(
        label="Proposed conditions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line.",
    )

    def clean_proposed_conditions(self) -> list[str]:
        return _lines(self.cleaned_data["proposed_conditions"])


class ConflictResolveForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, widget=forms.RadioSelect)
    level = forms.ChoiceField(label="Evidence level", choices=[CHOOSE, *EvidenceLevel.choices])
    stage = forms.ChoiceField(label="Decision stage", choices=[CHOOSE, *DecisionStage.choices])
    note = forms.CharField(label="Resolution", widget=forms.Textarea(attrs={"rows": 3}))


class SignOffForm(forms.Form):
    decision = forms.ChoiceField(
        label="I sign", choices=[(d.value, signature_meaning(d.value)) for d in Decision], widget=forms.RadioSelect
    )
    password = forms.CharField(
        label="Re-enter your password to sign",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ConditionMetForm(forms.Form):
    note = forms.CharField(
        label="Evidence it is met", help_text="A note or a link.", widget=forms.Textarea(attrs={"rows": 2})
    )


class ConditionWaiveForm(forms.Form):
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class ReopenForm(forms.Form):
    reason = forms.CharField(label="Why reopen", widget=forms.Textarea(attrs={"rows": 2}))


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", widget=forms.Textarea(attrs={"rows": 3}), help_text="Mention someone with @username."
    )
