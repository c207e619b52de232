"""Forms for dossier pages: validation and rendering only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from dossiers.models import Candidate, Decision, EvidenceLevel, ImportRun, Market
from dossiers.services.uploads import UPLOAD_KINDS


class ImportUploadForm(forms.Form):
    """A dossier report or a prediction CSV to import, with the market it is for."""

    kind = forms.ChoiceField(choices=[(kind.value, kind.label) for kind in UPLOAD_KINDS])
    file = forms.FileField()
    market_code = forms.CharField(
        max_length=8,
        required=False,
        label="Market code",
        help_text="e.g. IN. Optional for dossier reports (the report names its market); required for predictions.",
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; uploads are limited to {filesizeformat(limit)}."
            )
        return upload

    def clean_market_code(self) -> str:
        return self.cleaned_data["market_code"].strip().upper()

    def clean(self):  # type: ignore[no-untyped-def]
        data = super().clean() or {}
        if data.get("kind") == ImportRun.Kind.PREDICTIONS and not data.get("market_code"):
            self.add_error("market_code", "A prediction CSV needs the market code it is for.")
        return data


LEVEL_CHOICES = [(level.value, level.value) for level in EvidenceLevel]
SORT_CHOICES = [("score", "Score, highest first"), ("level", "Evidence level, best first"), ("updated", "Last change")]


class CandidateFilterForm(forms.Form):
    """The candidate list's filters, search and sort, read from the query string."""

    q = forms.CharField(required=False, label="Search", max_length=200)
    market = forms.ChoiceField(required=False)
    drug = forms.CharField(required=False, max_length=200)
    disease = forms.CharField(required=False, max_length=300)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Candidate.Status.choices])
    level = forms.ChoiceField(required=False, label="Evidence level", choices=[("", "Any level"), *LEVEL_CHOICES])
    decision = forms.ChoiceField(required=False, choices=[("", "Any decision"), *Decision.choices])
    min_score = forms.DecimalField(required=False, label="Min. score (%)", min_value=0, max_value=100, decimal_places=2)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def __init__(self, *args: Any, markets: Iterable[Market], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        market_field = cast(forms.ChoiceField, self.fields["market"])
        market_field.choices = [("", "All markets"), *((m.code, str(m)) for m in markets)]

    def clean_min_score(self) -> float | None:
        """The page speaks percent like the reports; the selector takes the 0–1 model score."""
        percent = self.cleaned_data["min_score"]
        return None if percent is None else float(percent) / 100

    def filters(self) -> dict[str, Any]:
        """The valid filters; an invalid field is dropped (the form shows its error) rather than failing the page."""
        if self.is_valid():
            return self.cleaned_data
        return {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
