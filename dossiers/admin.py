"""Curation screens. Candidate and dossier saves go through `dossiers.services.curation` (version check).

Rules of these screens:
- a user sees only the rows of the markets they see (`dossiers.selectors.markets_visible_to`), and may
  change a row only where `dossiers.permissions.can_curate` says so, on top of Django's model permissions;
- child rows (evidence links, conditions, interactions, gaps) are edited inline on their candidate or
  dossier, so each such edit is covered by the parent's version check; their own screens are read-only;
- every write names the acting user for the PostgreSQL audit trigger (`curation.name_actor`);
- predictions are millions of rows: no full counts, capped pagination, raw ids, prefix search.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.safestring import SafeString

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    ClinicalTrial,
    DataGap,
    Dossier,
    Drug,
    DrugApproval,
    DrugInteraction,
    EvidenceChange,
    GuardrailCondition,
    ImportRun,
    Market,
    Prediction,
    Publication,
    RefreshRun,
    SafetyStatement,
)
from dossiers.permissions import can_curate, sees_all_markets
from dossiers.report import render_dossier
from dossiers.selectors import markets_visible_to
from dossiers.services.candidates import candidate_promote
from dossiers.services.curation import (
    CANDIDATE_FIELDS,
    DECISION_FIELDS,
    DOSSIER_FIELDS,
    StaleEdit,
    candidate_create,
    candidate_update,
    curatable_candidate_fields,
    dossier_create,
    dossier_update,
    name_actor,
)

PROVENANCE_FIELDS = ("origin", "origin_name", "origin_line", "origin_query", "retrieved_at")
ONE_COLUMN_PROVENANCE = ("provenance",)  # an inline row's origin and retrieval date in one column
PROMOTE_AT_MOST = 500
PREDICTION_COUNT_CAP = 10_000


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _market_of(obj: models.Model, path: str) -> Market | None:
    """Follow a lookup path such as "dossier__market" from a row to its market (None where it has none)."""
    target: Any = obj
    for part in path.split("__"):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def _may_curate(request: HttpRequest, obj: Any, path: str) -> bool:
    """Rows without a market (a failed import, a drug's refresh run) are for those who see all markets."""
    if obj is None:
        return True
    market = _market_of(obj, path)
    return can_curate(request.user, market) if market is not None else sees_all_markets(request.user)


# ---------------------------------------------------------------- shared behaviour


class AuditedAdmin(admin.ModelAdmin):
    """Names the acting user for the audit trigger on every write made through this screen."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        name_actor(by=_user(request))
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        name_actor(by=_user(request))
        super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        name_actor(by=_user(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        name_actor(by=_user(request))
        super().delete_queryset(request, queryset)


class MarketScopedAdmin(AuditedAdmin):
    """Rows of the user's markets only; changing one needs `can_curate` for its market."""

    market_path = "market"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if sees_all_markets(request.user):
            return queryset
        return queryset.filter(**{f"{self.market_path}__in": markets_visible_to(request.user)})

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _may_curate(request, obj, self.market_path)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and _may_curate(request, obj, self.market_path)


class ReadOnlyAdmin(MarketScopedAdmin):
    """A screen to look at rows that are written elsewhere (imports, inlines, refresh jobs)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CuratedInline(admin.TabularInline):
    """An inline that may be changed only where its parent's market may be curated."""

    extra = 0
    parent_market_path = "market"
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 50})}}

    @admin.display(description="Provenance")
    def provenance(self, obj: Any) -> str:
        if obj.pk is None:
            return "—"
        retrieved = f" · {obj.retrieved_at:%Y-%m-%d}" if obj.retrieved_at else ""
        return f"{obj.provenance_label}{retrieved}"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_add_permission(request, obj) and _may_curate(request, obj, self.parent_market_path)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _may_curate(request, obj, self.parent_market_path)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and _may_curate(request, obj, self.parent_market_path)


class VisibleMarketFilter(admin.SimpleListFilter):
    """Filter by the markets the user sees (not every market, nor a DISTINCT over millions of rows)."""

    title = "market"
    parameter_name = "market"
    path = "market"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(market.pk), str(market)) for market in markets_visible_to(request.user)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        # by id, not code: `market_id = n` uses the (market, score) index without a join
        return queryset.filter(**{f"{self.path}__id": int(value)}) if value and value.isdigit() else queryset


class DossierMarketFilter(VisibleMarketFilter):
    path = "dossier__market"


class FixedTargetWidget(forms.HiddenInput):
    """Shows the already loaded target of an existing link instead of a widget that queries per row."""

    def __init__(self, label: str, url: str) -> None:
        super().__init__()
        self.label, self.url = label, url

    @property
    def is_hidden(self) -> bool:
        return False  # shown as a link in its own column of a tabular inline

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        hidden = super().render(name, value, attrs, renderer)
        return format_html('{}<a href="{}" target="_blank" rel="noopener">{}</a>', hidden, self.url, self.label)


class EvidenceLinkFormSet(BaseInlineFormSet):
    """Existing evidence links keep their trial or publication: exclude the link and add another instead."""

    target_field = ""

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        instance = getattr(form, "instance", None)
        if instance is not None and instance.pk and self.target_field in form.fields:
            target = getattr(instance, self.target_field)
            url = str(getattr(target, "registry_url", None) or getattr(target, "pubmed_url", ""))
            form.fields[self.target_field].disabled = True
            form.fields[self.target_field].widget = FixedTargetWidget(str(target), url)


class TrialLinkFormSet(EvidenceLinkFormSet):
    target_field = "trial"


class PublicationLinkFormSet(EvidenceLinkFormSet):
    target_field = "publication"


class VersionedForm(forms.ModelForm):
    """Carries the version the editor loaded; a save over a newer version is refused with a clear error."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    what = "row"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["expected_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk:
            expected = cleaned.get("expected_version")
            if expected is None:
                raise ValidationError(f"The form lost the {self.what}'s version; reload the page.")
            # the instance was just read from the database by the admin: its version is the current one
            if expected != self.instance.version:
                raise StaleEdit(
                    what=self.what,
                    current_version=self.instance.version,
                    expected_version=expected,
                    changed_at=self.instance.updated_at,
                    who=_last_admin_editor(self.instance),
                )
        return cleaned


def _last_admin_editor(obj: Candidate | Dossier) -> str:
    """Who saved the row's current version, when that save was made in admin (which logs it after saving)."""
    entry = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            action_flag=CHANGE,
            action_time__gte=obj.updated_at,
        )
        .select_related("user")
        .order_by("-action_time")
        .first()
    )
    if entry is None:
        return ""
    user: User = entry.user  # type: ignore[assignment]
    return user.get_full_name() or user.get_username()


class CandidateForm(VersionedForm):
    what = "candidate"

    class Meta:
        model = Candidate
        fields = ["dossier", *CANDIDATE_FIELDS]


class DossierForm(VersionedForm):
    what = "dossier"

    class Meta:
        model = Dossier
        fields = ["drug", "market", *DOSSIER_FIELDS]


class VersionedAdmin(MarketScopedAdmin):
    """A stale save caught only under the service's row lock: roll back, say so, show the fresh row."""

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except StaleEdit as exc:
            # raised inside the admin's transaction, which has rolled back: nothing of the save was kept
            messages.error(request, exc.messages[0])
            return HttpResponseRedirect(request.path)

    def _saved_into(self, obj: Any, saved: Any) -> None:
        """Copy what the service wrote onto the admin's instance, which the inlines then hang on."""
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at
        obj.created_at = saved.created_at
        obj._state.adding, obj._state.db = False, saved._state.db


# ---------------------------------------------------------------- markets, drugs


@admin.register(Market)
class MarketAdmin(AuditedAdmin):
    list_display = ["code", "name", "regulator", "registration_term"]
    search_fields = ["code", "name"]
    filter_horizontal = ["members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Market]:
        return markets_visible_to(request.user)

    # The team of a market decides who sees its dossiers: only admins change it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and sees_all_markets(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Market | None = None) -> bool:
        return super().has_change_permission(request, obj) and sees_all_markets(request.user)


class DrugApprovalInline(admin.TabularInline):
    model = DrugApproval
    extra = 0


@admin.register(Drug)
class DrugAdmin(AuditedAdmin):
    list_display = ["name", "drugbank_id", "rxcui", "drug_class"]
    search_fields = ["name", "drugbank_id", "rxcui"]
    inlines = [DrugApprovalInline]


@admin.register(DrugApproval)
class DrugApprovalAdmin(AuditedAdmin):
    list_display = ["drug", "agency"]
    list_select_related = ["drug"]
    list_filter = ["agency"]
    search_fields = ["drug__name", "agency"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # edited on the drug

    def has_change_permission(self, request: HttpRequest, obj: DrugApproval | None = None) -> bool:
        return False


# ---------------------------------------------------------------- dossiers


class DrugInteractionInline(CuratedInline):
    model = DrugInteraction
    fields = ["interacting_drug", "severity", "note", "position", *ONE_COLUMN_PROVENANCE]
    readonly_fields = ONE_COLUMN_PROVENANCE


class SafetyStatementInline(CuratedInline):
    model = SafetyStatement
    fields = ["kind", "text", "position", *ONE_COLUMN_PROVENANCE]
    readonly_fields = ONE_COLUMN_PROVENANCE


class DataGapInline(CuratedInline):
    model = DataGap
    fields = ["code", "description", "severity", "status", *ONE_COLUMN_PROVENANCE]
    readonly_fields = ONE_COLUMN_PROVENANCE


@admin.register(Dossier)
class DossierAdmin(VersionedAdmin):
    form = DossierForm
    list_display = ["drug", "market", "market_status", "registration_count", "interaction_total", "updated_at"]
    list_select_related = ["drug", "market"]
    list_filter = [VisibleMarketFilter, "market_status"]
    search_fields = ["drug__name", "title"]
    autocomplete_fields = ["drug"]
    readonly_fields = ["candidate_links", "version", "created_at", "updated_at"]
    inlines = [DrugInteractionInline, SafetyStatementInline, DataGapInline]
    actions = ["export_markdown"]
    fieldsets = [
        (None, {"fields": ["drug", "market", "title", "expected_version", "candidate_links"]}),
        ("Market", {"fields": ["market_status", "registration_count", "market_information"]}),
        ("Report header", {"fields": ["reported_indication_count", "disclaimer"]}),
        (
            "Cytotoxicity",
            {
                "fields": [
                    "cytotoxicity_classification",
                    "myelosuppression_risk",
                    "emetogenicity",
                    "monitoring_items",
                    "handling_protection",
                    "cytotoxicity_note",
                ]
            },
        ),
        ("Safety", {"fields": ["interaction_total", "safety_note"]}),
        ("Bookkeeping", {"fields": ["version", "created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Dossier | None = None) -> list[str]:
        fixed = ["drug", "market"] if obj is not None else []  # a dossier is one drug in one market for life
        return [*super().get_readonly_fields(request, obj), *fixed]

    def get_form(self, request: HttpRequest, obj: Dossier | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None and "market" in form.base_fields:
            form.base_fields["market"].queryset = markets_visible_to(request.user)  # type: ignore[attr-defined]
        return form

    @admin.display(description="Predicted indications")
    def candidate_links(self, obj: Dossier) -> str:
        if obj.pk is None:
            return "—"
        rows = obj.candidates.order_by("disease").values_list("pk", "disease")
        links = format_html_join(
            ", ", '<a href="{}">{}</a>', ((reverse("admin:dossiers_candidate_change", args=[pk]), d) for pk, d in rows)
        )
        return links or "—"

    def save_model(self, request: HttpRequest, obj: Dossier, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in DOSSIER_FIELDS}
        if change:
            expected = form.cleaned_data["expected_version"]
            saved = dossier_update(dossier_id=obj.pk, by=_user(request), expected_version=expected, **fields)
        else:
            saved = dossier_create(drug_id=obj.drug_id, market_id=obj.market_id, by=_user(request), **fields)
        self._saved_into(obj, saved)

    @admin.action(description="Export the selected dossiers as Markdown")
    def export_markdown(self, request: HttpRequest, queryset: QuerySet[Dossier]) -> HttpResponse:
        dossiers = list(queryset.select_related("drug", "market"))
        files = {
            f"{d.drug.name}-{d.market.code}.md".replace(" ", "-"): render_dossier(dossier=d, fmt="md") for d in dossiers
        }
        if len(files) == 1:
            ((name, text),) = files.items()
            response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
            response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
            return response
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = content_disposition_header(True, "dossiers.zip") or "attachment"
        return response


@admin.register(DrugInteraction)
class DrugInteractionAdmin(ReadOnlyAdmin):
    market_path = "dossier__market"
    list_display = ["interacting_drug", "severity", "dossier"]
    list_select_related = ["dossier__drug", "dossier__market"]
    list_filter = [DossierMarketFilter, "severity"]
    search_fields = ["interacting_drug", "dossier__drug__name"]


@admin.register(SafetyStatement)
class SafetyStatementAdmin(ReadOnlyAdmin):
    market_path = "dossier__market"
    list_display = ["__str__", "kind", "dossier"]
    list_select_related = ["dossier__drug", "dossier__market"]
    list_filter = [DossierMarketFilter, "kind"]
    search_fields = ["text", "dossier__drug__name"]


@admin.register(DataGap)
class DataGapAdmin(ReadOnlyAdmin):
    market_path = "dossier__market"
    list_display = ["code", "description", "severity", "status", "dossier"]
    list_select_related = ["dossier__drug", "dossier__market"]
    list_filter = [DossierMarketFilter, "severity", "status"]
    search_fields = ["code", "description", "dossier__drug__name"]


# ---------------------------------------------------------------- candidates


class CandidateTrialInline(CuratedInline):
    model = CandidateTrial
    formset = TrialLinkFormSet
    parent_market_path = "dossier__market"
    fields = ["trial", "relevance", "curation_status", "key_findings", "position", *ONE_COLUMN_PROVENANCE]
    readonly_fields = ONE_COLUMN_PROVENANCE
    autocomplete_fields = ["trial"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CandidateTrial]:
        return super().get_queryset(request).select_related("trial")


class CandidatePublicationInline(CuratedInline):
    model = CandidatePublication
    formset = PublicationLinkFormSet
    parent_market_path = "dossier__market"
    fields = ["publication", "tier", "curation_status", "key_findings", "position", *ONE_COLUMN_PROVENANCE]
    readonly_fields = ONE_COLUMN_PROVENANCE
    autocomplete_fields = ["publication"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CandidatePublication]:
        return super().get_queryset(request).select_related("publication")


class GuardrailConditionInline(CuratedInline):
    model = GuardrailCondition
    parent_market_path = "dossier__market"
    fields = ["title", "detail", "category", "position", "owner", "due_date", "status", "resolution_note"]
    # met and waived are review decisions (reviews.services), not curation edits
    readonly_fields = ["status", "resolution_note"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "owner":
            # an owner comes from the teams of the editor's markets (curators may not browse all users)
            kwargs["queryset"] = (
                User.objects.filter(markets__in=markets_visible_to(request.user), is_active=True)
                .distinct()
                .order_by("last_name", "first_name", "username")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[GuardrailCondition]:
        return super().get_queryset(request).select_related("owner")


@admin.register(Candidate)
class CandidateAdmin(VersionedAdmin):
    form = CandidateForm
    market_path = "dossier__market"
    list_display = [
        "disease",
        "drug_name",
        "market_code",
        "status",
        "level",
        "recommended_decision",
        "txgnn_score",
        "updated_at",
    ]
    list_select_related = ["dossier__drug", "dossier__market"]
    list_filter = [DossierMarketFilter, "status", "evidence_level", "recommended_decision", "source"]
    search_fields = ["disease", "dossier__drug__name"]
    show_full_result_count = False
    autocomplete_fields = ["dossier"]
    readonly_fields = [
        "status",
        "prediction",
        "computed_evidence_level",
        "evidence_level_reasons",
        "evidence_refreshed_at",
        "version",
        "created_at",
        "updated_at",
    ]
    inlines = [CandidateTrialInline, CandidatePublicationInline, GuardrailConditionInline]
    fieldsets = [
        (None, {"fields": ["dossier", "disease", "title", "status", "expected_version"]}),
        ("Prediction", {"fields": ["prediction", "txgnn_score", "txgnn_rank", "source", "confidence"]}),
        (
            "Assessment",
            {
                "fields": [
                    "evidence_level",
                    "decision_stage",
                    "recommended_decision",
                    "computed_evidence_level",
                    "evidence_level_reasons",
                    "evidence_refreshed_at",
                ]
            },
        ),
        (
            "Report text",
            {"fields": ["summary", "rationale", "trials_note", "publications_note", "conclusion_rationale"]},
        ),
        (
            "Evidence totals",
            {
                "fields": [
                    "trials_reported_total",
                    "trials_total_capped",
                    "publications_reported_total",
                    "publications_total_capped",
                ]
            },
        ),
        ("Bookkeeping", {"fields": ["version", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Candidate]:
        return super().get_queryset(request).select_related("dossier__drug", "dossier__market", "prediction")

    def get_readonly_fields(self, request: HttpRequest, obj: Candidate | None = None) -> list[str]:
        fixed: list[str] = []
        if obj is not None:
            fixed.append("dossier")
            fixed += [name for name in DECISION_FIELDS if name not in curatable_candidate_fields(obj)]
        return [*super().get_readonly_fields(request, obj), *fixed]

    @admin.display(description="Level", ordering="evidence_level")
    def level(self, obj: Candidate) -> str:
        return obj.evidence_level

    @admin.display(description="Drug", ordering="dossier__drug__name")
    def drug_name(self, obj: Candidate) -> str:
        return obj.dossier.drug.name

    @admin.display(description="Market", ordering="dossier__market__code")
    def market_code(self, obj: Candidate) -> str:
        return obj.dossier.market.code

    def save_model(self, request: HttpRequest, obj: Candidate, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in CANDIDATE_FIELDS}
        if change:
            expected = form.cleaned_data["expected_version"]
            saved = candidate_update(candidate_id=obj.pk, by=_user(request), expected_version=expected, **fields)
        else:
            fields.pop("disease", None)
            saved = candidate_create(dossier_id=obj.dossier_id, by=_user(request), disease=obj.disease, **fields)
        self._saved_into(obj, saved)


@admin.register(GuardrailCondition)
class GuardrailConditionAdmin(ReadOnlyAdmin):
    market_path = "candidate__dossier__market"
    list_display = ["title", "category", "status", "owner", "due_date", "candidate"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market", "owner"]
    list_filter = ["status", "category"]
    search_fields = ["title", "candidate__disease", "candidate__dossier__drug__name"]
    raw_id_fields = ["candidate", "owner", "resolved_by"]


@admin.register(CandidateTrial)
class CandidateTrialAdmin(ReadOnlyAdmin):
    market_path = "candidate__dossier__market"
    list_display = ["trial", "candidate", "relevance", "curation_status", "first_seen_at", "changed_at"]
    list_select_related = ["trial", "candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = ["relevance", "curation_status"]
    search_fields = ["trial__nct_id", "candidate__disease"]
    raw_id_fields = ["candidate", "trial"]


@admin.register(CandidatePublication)
class CandidatePublicationAdmin(ReadOnlyAdmin):
    market_path = "candidate__dossier__market"
    list_display = ["publication", "candidate", "tier", "curation_status", "first_seen_at", "changed_at"]
    list_select_related = ["publication", "candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = ["tier", "curation_status"]
    search_fields = ["publication__pmid", "candidate__disease"]
    raw_id_fields = ["candidate", "publication"]


# ---------------------------------------------------------------- evidence (shared by all markets)


@admin.register(ClinicalTrial)
class ClinicalTrialAdmin(AuditedAdmin):
    list_display = ["nct_id", "title", "phase", "status", "enrollment", "has_results", "retrieved_at"]
    list_filter = ["phase", "status", "has_results", "origin"]
    search_fields = ["nct_id", "title"]
    readonly_fields = PROVENANCE_FIELDS


@admin.register(Publication)
class PublicationAdmin(AuditedAdmin):
    list_display = ["pmid", "year", "study_type", "journal", "title", "retrieved_at"]
    list_filter = ["study_type", "origin"]
    search_fields = ["pmid", "title", "doi"]
    readonly_fields = PROVENANCE_FIELDS


# ---------------------------------------------------------------- predictions (millions of rows)


class CappedCountPaginator(Paginator):
    """Counts at most PREDICTION_COUNT_CAP rows: a full COUNT(*) over millions costs seconds per page."""

    @cached_property
    def count(self) -> int:
        # the page's ordering is useless for a count and costs a sort of every matching row
        return self.object_list.order_by()[: PREDICTION_COUNT_CAP + 1].count()  # type: ignore[attr-defined]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["drug", "disease", "score", "rank", "source", "market", "imported_at"]
    list_select_related = ["drug", "market"]
    list_filter = [VisibleMarketFilter, "source"]
    search_fields = ["drug__name", "disease"]  # the search itself is get_search_results below
    search_help_text = "Start of a drug name or DrugBank id, or start of a disease name."
    ordering = ["-pk"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    raw_id_fields = ["drug", "market"]
    actions = ["promote"]

    def get_sortable_by(self, request: HttpRequest) -> tuple[str, ...]:
        # the (market, score) index serves a sort by score within one market; across markets it is a full sort
        return ("score",) if request.GET.get(VisibleMarketFilter.parameter_name) else ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Prediction], search_term: str
    ) -> tuple[QuerySet[Prediction], bool]:
        """The whole term as one prefix; drugs are looked up first so the (drug, market) index serves them."""
        term = search_term.strip()
        if not term:
            return queryset, False
        drugs = Drug.objects.filter(models.Q(name__istartswith=term) | models.Q(drugbank_id__iexact=term))
        drug_ids = list(drugs.values_list("pk", flat=True)[:1000])
        return queryset.filter(models.Q(drug_id__in=drug_ids) | models.Q(disease__istartswith=term)), False

    @admin.action(description="Promote the selected predictions to candidates")
    def promote(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[: PROMOTE_AT_MOST + 1])
        if len(ids) > PROMOTE_AT_MOST:
            messages.error(request, f"Select at most {PROMOTE_AT_MOST} predictions to promote at once.")
            return
        promoted, refused = 0, []
        for prediction_id in ids:
            try:
                candidate_promote(prediction_id=prediction_id, by=_user(request))
            except PermissionDenied as exc:
                refused.append(f"prediction {prediction_id}: {exc}")
            else:
                promoted += 1
        if promoted:
            messages.success(request, f"{promoted} prediction(s) promoted to candidates.")
        for line in refused:
            messages.error(request, line)


# ---------------------------------------------------------------- runs and logs (written by jobs)


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = ["file_name", "kind", "market", "status", "rows_total", "rows_written", "created_by", "started_at"]
    list_select_related = ["market", "created_by"]
    list_filter = ["kind", "status", VisibleMarketFilter]
    search_fields = ["file_name", "sha256"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportRun]:
        # failed runs that never named a market belong to nobody's market but stay visible to curators
        queryset = ImportRun.objects.select_related("market", "created_by")
        if sees_all_markets(request.user):
            return queryset
        return queryset.filter(models.Q(market__in=markets_visible_to(request.user)) | models.Q(market__isnull=True))


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyAdmin):
    list_display = ["source", "status", "candidate", "drug", "total_hits", "new_count", "changed_count", "created_at"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market", "drug"]
    list_filter = ["source", "status"]
    search_fields = ["=request_id", "candidate__disease", "drug__name"]
    raw_id_fields = ["candidate", "drug", "requested_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RefreshRun]:
        queryset = RefreshRun.objects.select_related(*self.list_select_related)
        if sees_all_markets(request.user):
            return queryset
        # drug runs (label, RxNorm) are about a drug in every market
        visible = markets_visible_to(request.user)
        return queryset.filter(models.Q(candidate__dossier__market__in=visible) | models.Q(candidate__isnull=True))


@admin.register(EvidenceChange)
class EvidenceChangeAdmin(ReadOnlyAdmin):
    market_path = "candidate__dossier__market"
    list_display = ["kind", "significant", "candidate", "created_at", "notified_at"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = ["kind", "significant"]
    search_fields = ["candidate__disease", "candidate__dossier__drug__name"]
    raw_id_fields = ["candidate", "refresh_run"]


@admin.register(CandidateVisit)
class CandidateVisitAdmin(ReadOnlyAdmin):
    market_path = "candidate__dossier__market"
    list_display = ["user", "candidate", "seen_at"]
    list_select_related = ["user", "candidate__dossier__drug", "candidate__dossier__market"]
    search_fields = ["user__username", "candidate__disease"]
    raw_id_fields = ["user", "candidate"]
