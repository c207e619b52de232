"""API output shapes of dossier data. Read-only: writes go through services with their own input serializers."""

from __future__ import annotations

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
    GuardrailCondition,
    Market,
    Prediction,
    Publication,
    SafetyStatement,
)

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


class CandidateTrialSerializer(serializers.ModelSerializer):
    trial = TrialSerializer(read_only=True)

    class Meta:
        model = CandidateTrial
        fields = ["trial", "key_findings", "relevance", "curation_status", *PROVENANCE_FIELDS]


class CandidatePublicationSerializer(serializers.ModelSerializer):
    publication = PublicationSerializer(read_only=True)

    class Meta:
        model = CandidatePublication
        fields = ["publication", "key_findings", "tier", "curation_status", *PROVENANCE_FIELDS]


class ConditionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GuardrailCondition
        fields = ["id", "title", "detail", "category", "status", "due_date", "resolution_note", "resolved_at"]


class CandidateDetailSerializer(CandidateSerializer):
    trials = CandidateTrialSerializer(source="trial_links", many=True, read_only=True)
    publications = CandidatePublicationSerializer(source="publication_links", many=True, read_only=True)
    conditions = ConditionSerializer(many=True, read_only=True)

    class Meta(CandidateSerializer.Meta):
        fields = [
            *CandidateSerializer.Meta.fields,
            "rationale",
            "conclusion_rationale",
            "trials_reported_total",
            "trials_total_capped",
            "publications_reported_total",
            "publications_total_capped",
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
