"""API shapes of dossier data: outputs, and the inputs of the curation edits (validated here, written by services)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    ClinicalTrial,
    DataGap,
    Dossier,
    Drug,
    DrugApproval,
    DrugInteraction,
    EvidenceChange,
    GuardrailCondition,
    Market,
    Prediction,
    Publication,
    SafetyStatement,
)
from dossiers.services import curation

PROVENANCE_FIELDS = ["origin", "origin_name", "origin_line", "origin_query", "retrieved_at"]


class MarketSerializer(serializers.ModelSerializer):
    class Meta:
        model = Market
        fields = ["id", "code", "name", "regulator", "registration_term"]


class MarketRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Market
        fields = ["id", "code", "name"]


class DrugRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Drug
        fields = ["id", "name"]


class DrugApprovalSerializer(serializers.ModelSerializer):
    class Meta:
        model = DrugApproval
        fields = ["agency", "indications"]


class DrugSerializer(serializers.ModelSerializer):
    approvals = DrugApprovalSerializer(many=True, read_only=True)

    class Meta:
        model = Drug
        fields = [
            "id",
            "name",
            "synonyms",
            "drugbank_id",
            "rxcui",
            "drug_class",
            "mechanism_of_action",
            "original_indications",
            "approvals",
        ]


class DossierSerializer(serializers.ModelSerializer):
    drug = DrugRefSerializer(read_only=True)
    market = MarketRefSerializer(read_only=True)

    class Meta:
        model = Dossier
        fields = [
            "id",
            "drug",
            "market",
            "title",
            "market_status",
            "registration_count",
            "reported_indication_count",
            "interaction_total",
            "version",
            "created_at",
            "updated_at",
        ]


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DrugInteraction
        fields = ["interacting_drug", "severity", "note", *PROVENANCE_FIELDS]


class SafetyStatementSerializer(serializers.ModelSerializer):
    class Meta:
        model = SafetyStatement
        fields = ["kind", "text", *PROVENANCE_FIELDS]


class DataGapSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataGap
        fields = ["code", "description", "severity", "status", *PROVENANCE_FIELDS]


class DossierDetailSerializer(DossierSerializer):
    interactions = InteractionSerializer(many=True, read_only=True)
    safety_statements = SafetyStatementSerializer(many=True, read_only=True)
    data_gaps = DataGapSerializer(many=True, read_only=True)

    class Meta(DossierSerializer.Meta):
        fields = [
            *DossierSerializer.Meta.fields,
            "market_information",
            "cytotoxicity_classification",
            "myelosuppression_risk",
            "emetogenicity",
            "monitoring_items",
            "handling_protection",
            "safety_note",
            "disclaimer",
            "interactions",
            "safety_statements",
            "data_gaps",
        ]


class CandidateSerializer(serializers.ModelSerializer):
    drug = DrugRefSerializer(source="dossier.drug", read_only=True)
    market = MarketRefSerializer(source="dossier.market", read_only=True)

    class Meta:
        model = Candidate
        fields = [
            "id",
            "dossier",
            "drug",
            "market",
            "disease",
            "title",
            "txgnn_score",
            "txgnn_rank",
            "source",
            "confidence",
            "evidence_level",
            "decision_stage",
            "status",
            "recommended_decision",
            "summary",
            "version",
            "created_at",
            "updated_at",
        ]


class CandidateListSerializer(CandidateSerializer):
    """A candidate as the candidate resources show it: with its computed level and what is new for you."""

    evidence_level_reasons = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The items that produced computed_evidence_level."
    )
    new_evidence_count = serializers.SerializerMethodField(
        help_text="Evidence changes since you last marked this candidate's evidence as reviewed (all, if never)."
    )

    class Meta(CandidateSerializer.Meta):
        fields = [
            *CandidateSerializer.Meta.fields,
            "computed_evidence_level",
            "evidence_level_reasons",
            "evidence_refreshed_at",
            "new_evidence_count",
        ]

    @extend_schema_field(OpenApiTypes.INT)
    def get_new_evidence_count(self, candidate: Candidate) -> int:
        return getattr(candidate, "new_evidence", None) or 0  # annotated by the viewset; NULL when none


class TrialSerializer(serializers.ModelSerializer):
    registry_url = serializers.URLField(read_only=True)

    class Meta:
        model = ClinicalTrial
        fields = [
            "id",
            "nct_id",
            "title",
            "phase",
            "status",
            "why_stopped",
            "enrollment",
            "start_date",
            "completion_date",
            "conditions",
            "interventions",
            "brief_summary",
            "has_results",
            "last_update",
            "registry_url",
            *PROVENANCE_FIELDS,
        ]


class PublicationSerializer(serializers.ModelSerializer):
    pubmed_url = serializers.URLField(read_only=True)

    class Meta:
        model = Publication
        fields = [
            "id",
            "pmid",
            "year",
            "study_type",
            "journal",
            "title",
            "authors",
            "doi",
            "abstract",
            "pubmed_url",
            *PROVENANCE_FIELDS,
        ]


# A link as evidence for one candidate; `id` is what POST /trial-links/{id}/curate/ (or publication-links) takes.
REFRESH_FIELDS = ["first_seen_at", "changed_at", "changed_fields"]


class CandidateTrialSerializer(serializers.ModelSerializer):
    trial = TrialSerializer(read_only=True)
    changed_fields = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = CandidateTrial
        fields = [
            "id",
            "candidate",
            "trial",
            "key_findings",
            "relevance",
            "curation_status",
            *REFRESH_FIELDS,
            *PROVENANCE_FIELDS,
        ]


class CandidatePublicationSerializer(serializers.ModelSerializer):
    publication = PublicationSerializer(read_only=True)
    changed_fields = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = CandidatePublication
        fields = [
            "id",
            "candidate",
            "publication",
            "key_findings",
            "tier",
            "curation_status",
            *REFRESH_FIELDS,
            *PROVENANCE_FIELDS,
        ]


class EvidenceChangeSerializer(serializers.ModelSerializer):
    """Something a refresh found new or changed; `significant` ones alert the approver and watchers."""

    detail = serializers.DictField(read_only=True, help_text="What changed: ids, old and new values.")

    class Meta:
        model = EvidenceChange
        fields = ["id", "kind", "significant", "detail", "refresh_run", "created_at"]


class ConditionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GuardrailCondition
        fields = ["id", "title", "detail", "category", "status", "due_date", "resolution_note", "resolved_at"]


class CandidateDetailSerializer(CandidateListSerializer):
    trials = CandidateTrialSerializer(source="trial_links", many=True, read_only=True)
    publications = CandidatePublicationSerializer(source="publication_links", many=True, read_only=True)
    conditions = ConditionSerializer(many=True, read_only=True)
    evidence_seen_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When you last marked the evidence as reviewed; null if never."
    )
    new_evidence = EvidenceChangeSerializer(
        source="new_changes",
        many=True,
        read_only=True,
        help_text="The changes counted by new_evidence_count, newest first (at most 50).",
    )

    class Meta(CandidateListSerializer.Meta):
        fields = [
            *CandidateListSerializer.Meta.fields,
            "rationale",
            "conclusion_rationale",
            "trials_reported_total",
            "trials_total_capped",
            "publications_reported_total",
            "publications_total_capped",
            "evidence_seen_at",
            "new_evidence",
            "trials",
            "publications",
            "conditions",
        ]


class PredictionSerializer(serializers.ModelSerializer):
    drug = DrugRefSerializer(read_only=True)
    market = MarketRefSerializer(read_only=True)

    class Meta:
        model = Prediction
        fields = [
            "id",
            "market",
            "drug",
            "disease",
            "score",
            "rank",
            "source",
            "confidence",
            "license_id",
            "brand_name",
            "imported_at",
        ]


# ---------------------------------------------------------------- inputs of the curation edits


class StrictPatchInput(serializers.ModelSerializer):
    """A PATCH body: only editable fields, at least one; a field the edit would ignore is refused instead."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                editable = ", ".join(str(name) for name in self.fields if name != "reason")
                raise serializers.ValidationError(
                    {name: [f"Not editable here; editable: {editable}."] for name in unknown}
                )
            if not set(data) - {"reason"}:
                raise serializers.ValidationError({"non_field_errors": ["Send at least one field to change."]})
        return super().to_internal_value(data)


class CandidateUpdateInput(StrictPatchInput):
    """The curated content of a candidate. Its status moves only through the workflow actions."""

    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, write_only=True, help_text="Why, for the audit trail."
    )

    class Meta:
        model = Candidate
        fields = [*curation.CANDIDATE_FIELDS, "reason"]


class DossierUpdateInput(StrictPatchInput):
    """The market, cytotoxicity and safety profile of a dossier."""

    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, write_only=True, help_text="Why, for the audit trail."
    )

    class Meta:
        model = Dossier
        fields = [*curation.DOSSIER_FIELDS, "reason"]


class EvidenceCurateInput(serializers.Serializer):
    """Include or exclude a trial or publication for its candidate, as the refresh panel's Include/Exclude."""

    decision = serializers.ChoiceField(choices=[("included", "Include"), ("excluded", "Exclude")])
    grade = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1,
        help_text="A trial's relevance (A, B or C) or a publication's tier (1, 2 or 3); empty keeps the current one.",
    )
    key_findings = serializers.CharField(
        required=False, allow_blank=True, help_text="Replaces the link's key findings; omit it to keep them."
    )
