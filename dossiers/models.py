"""Markets, drugs, dossiers, candidates, evidence and model predictions.

Every value of a dossier report is a field or a row here, never a text blob: the published
report is an export of these tables (see `dossiers/report.py`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse


class EvidenceLevel(models.TextChoices):
    L1 = "L1", "L1 — Phase 3 RCTs or systematic review / meta-analysis"
    L2 = "L2", "L2 — single RCT or Phase 2 trials"
    L3 = "L3", "L3 — Phase 1 or observational"
    L4 = "L4", "L4 — case reports or preclinical"
    L5 = "L5", "L5 — prediction only"


class DecisionStage(models.TextChoices):
    S0 = "S0", "S0 — screening"
    S1 = "S1", "S1 — initial safety"
    S2 = "S2", "S2 — clinical feasibility"
    S3 = "S3", "S3 — recommendable"


class Decision(models.TextChoices):
    GO = "go", "Go"
    GUARDRAILS = "guardrails", "Proceed with Guardrails"
    HOLD = "hold", "Hold"
    RESEARCH = "research", "Research Question"
    NO_GO = "no_go", "No-Go"


class PredictionSource(models.TextChoices):
    DL = "DL", "DL"
    KG = "KG", "KG"
    KG_DL = "KG+DL", "KG + DL"


class Provenance(models.Model):
    """Where a row came from: an import file and line, or an external source and its query."""

    class Origin(models.TextChoices):
        IMPORT = "import", "Import file"
        SOURCE = "source", "External source"
        MANUAL = "manual", "Entered by a curator"

    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    origin_name = models.CharField(
        max_length=255, blank=True, help_text="Import file name, or source name such as ClinicalTrials.gov."
    )
    origin_line = models.PositiveIntegerField(null=True, blank=True, help_text="Line in the import file.")
    origin_query = models.TextField(blank=True, help_text="Query sent to the external source.")
    retrieved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def provenance_label(self) -> str:
        if self.origin == self.Origin.IMPORT:
            line = f", line {self.origin_line}" if self.origin_line else ""
            return f"{self.origin_name}{line}"
        if self.origin == self.Origin.SOURCE:
            return f"{self.origin_name}: {self.origin_query}".rstrip(": ")
        return "entered by a curator"


class Market(models.Model):
    """A country market with its regulator and its word for a product registration."""

    code = models.CharField(max_length=8, unique=True, help_text="ISO 3166 country code, e.g. IN.")
    name = models.CharField(max_length=100)
    regulator = models.CharField(max_length=200, blank=True)
    registration_term = models.CharField(
        max_length=50, default="registrations", help_text='What registrations are called, e.g. "DINs".'
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="markets", help_text="The market team."
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Drug(models.Model):
    """An active ingredient, independent of market."""

    name = models.CharField(max_length=200)
    synonyms = models.JSONField(default=list, blank=True, help_text="Brand names and other names.")
    drugbank_id = models.CharField(max_length=20, null=True, blank=True, unique=True)
    rxcui = models.CharField(max_length=20, blank=True)
    rxnorm_name = models.CharField(
        max_length=200, blank=True, help_text="RxNorm's name for the RxCUI (evidence searches use it); set by refresh."
    )
    drug_class = models.CharField(max_length=300, blank=True)
    mechanism_of_action = models.TextField(blank=True)
    original_indications = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="drug_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dossiers:drug_detail", args=[self.pk])


class DrugApproval(models.Model):
    """An approval of the drug by a regulator outside the dossier's market (e.g. US FDA, EMA)."""

    drug = models.ForeignKey(Drug, on_delete=models.CASCADE, related_name="approvals")
    agency = models.CharField(max_length=100)
    indications = models.TextField()

    class Meta:
        ordering = ["drug", "agency"]
        constraints = [models.UniqueConstraint(fields=["drug", "agency"], name="drugapproval_unique")]

    def __str__(self) -> str:
        return f"{self.drug} — {self.agency}"


class Dossier(models.Model):
    """One drug in one market: its market status, cytotoxicity and safety profile."""

    class MarketStatus(models.TextChoices):
        MARKETED = "marketed", "Marketed"
        NOT_MARKETED = "not_marketed", "Not Marketed"
        UNKNOWN = "unknown", "Unknown"

    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="dossiers")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="dossiers")
    title = models.CharField(max_length=300, blank=True, help_text='e.g. "Lenalidomide: From … to …".')
    market_status = models.CharField(max_length=20, choices=MarketStatus.choices, default=MarketStatus.UNKNOWN)
    registration_count = models.PositiveIntegerField(null=True, blank=True)
    market_information = models.TextField(blank=True)
    reported_indication_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Number of predicted indications stated in the report header."
    )
    # Cytotoxicity: all blank when the report has no such section.
    cytotoxicity_classification = models.TextField(blank=True)
    myelosuppression_risk = models.TextField(blank=True)
    emetogenicity = models.TextField(blank=True)
    monitoring_items = models.TextField(blank=True)
    handling_protection = models.TextField(blank=True)
    cytotoxicity_note = models.TextField(blank=True, help_text="The Cytotoxicity section's prose beside its table.")
    # Safety
    interaction_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Total interactions in the DDI database."
    )
    safety_note = models.TextField(blank=True, help_text="Free-text caveats, e.g. refer to the package insert.")
    disclaimer = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Raised on every edit; guards concurrent saves.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["drug__name", "market__code"]
        constraints = [models.UniqueConstraint(fields=["drug", "market"], name="dossier_drug_market_unique")]

    def __str__(self) -> str:
        return f"{self.drug.name} ({self.market.code})"

    def get_absolute_url(self) -> str:
        return reverse("dossiers:dossier_detail", args=[self.pk])

    @property
    def has_cytotoxicity(self) -> bool:
        return any(
            [
                self.cytotoxicity_classification,
                self.myelosuppression_risk,
                self.emetogenicity,
                self.monitoring_items,
                self.handling_protection,
            ]
        )


class DrugInteraction(Provenance):
    """A named interaction of the dossier's drug with another drug."""

    class Severity(models.TextChoices):
        MAJOR = "major", "Major"
        MODERATE = "moderate", "Moderate"
        MINOR = "minor", "Minor"
        UNKNOWN = "unknown", "Unknown"

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="interactions")
    interacting_drug = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.UNKNOWN)
    note = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["dossier", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dossier", "interacting_drug"], name="interaction_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.interacting_drug} ({self.severity})"


class SafetyStatement(Provenance):
    """A boxed warning, contraindication or warning of the dossier's drug."""

    class Kind(models.TextChoices):
        BOXED_WARNING = "boxed_warning", "Boxed warning"
        CONTRAINDICATION = "contraindication", "Contraindication"
        WARNING = "warning", "Warning or precaution"
        INTERACTION = "interaction", "Drug interactions (label)"

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="safety_statements")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.TextField()
    position = models.PositiveIntegerField(default=0)
    source_id = models.CharField(max_length=100, blank=True, help_text="The source's record id, e.g. a label set id.")
    source_updated = models.CharField(
        max_length=20, blank=True, help_text="The source's last update of the record, e.g. label effective time."
    )

    class Meta:
        ordering = ["dossier", "kind", "position", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text[:60]}"


class DataGap(Provenance):
    """Something the evidence pack is missing, e.g. the label's warnings were never retrieved."""

    class Severity(models.TextChoices):
        BLOCKING = "blocking", "Blocking"
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"
        LOW = "low", "Low"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="data_gaps")
    code = models.CharField(max_length=10, help_text="e.g. DG001")
    description = models.TextField()
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)

    class Meta:
        ordering = ["dossier", "code"]
        constraints = [models.UniqueConstraint(fields=["dossier", "code"], name="datagap_unique")]

    def __str__(self) -> str:
        return f"{self.code}: {self.description[:60]}"


class Prediction(models.Model):
    """One raw TxGNN model row: a drug, a disease and its score in one market."""

    # No single-column indexes: prediction_unique leads with market and prediction_drug_market with drug,
    # and two more b-trees would cost every million-row import their upkeep.
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    drug = models.ForeignKey(Drug, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    disease = models.CharField(max_length=300)
    score = models.FloatField(null=True, blank=True, help_text="TxGNN score between 0 and 1.")
    rank = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=PredictionSource.choices, blank=True)
    confidence = models.CharField(max_length=20, blank=True)
    license_id = models.CharField(max_length=100, blank=True)
    brand_name = models.CharField(max_length=300, blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["market", "drug", "disease"], name="prediction_unique"),
        ]
        indexes = [
            models.Index(fields=["market", "-score"], name="prediction_market_score"),
            models.Index(fields=["drug", "market"], name="prediction_drug_market"),
        ]

    def __str__(self) -> str:
        return f"{self.drug_id} → {self.disease}"


class Candidate(models.Model):
    """One predicted indication of a dossier's drug, travelling through review to a decision."""

    class Status(models.TextChoices):
        PREDICTED = "predicted", "Predicted"
        DEPRIORITIZED = "deprioritized", "Deprioritized"
        TRIAGED = "triaged", "Triaged"
        IN_CURATION = "in_curation", "Evidence curation"
        IN_REVIEW = "in_review", "Independent review"
        IN_CONFLICT = "in_conflict", "Reviewers disagree"
        DECISION_PENDING = "decision_pending", "Decision pending"
        SIGNED_OFF = "signed_off", "Signed off"
        CLEARED = "cleared", "Cleared"

    class Confidence(models.TextChoices):
        HIGH = "high", "High"
        MEDIUM = "medium", "Medium"
        LOW = "low", "Low"

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="candidates")
    prediction = models.ForeignKey(
        Prediction, on_delete=models.SET_NULL, null=True, blank=True, related_name="candidates"
    )
    disease = models.CharField(max_length=300)
    title = models.CharField(max_length=300, blank=True, help_text='Report title, "Drug: From X to Y".')
    txgnn_score = models.FloatField(null=True, blank=True, help_text="0–1; null when not available.")
    txgnn_rank = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=PredictionSource.choices, blank=True)
    confidence = models.CharField(max_length=10, choices=Confidence.choices, blank=True)
    evidence_level = models.CharField(max_length=2, choices=EvidenceLevel.choices, default=EvidenceLevel.L5)
    decision_stage = models.CharField(max_length=2, choices=DecisionStage.choices, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PREDICTED)
    recommended_decision = models.CharField(max_length=12, choices=Decision.choices, blank=True)
    summary = models.TextField(blank=True, help_text="One-sentence summary.")
    rationale = models.TextField(blank=True, help_text="Why is this prediction reasonable?")
    conclusion_rationale = models.TextField(blank=True)
    trials_reported_total = models.PositiveIntegerField(null=True, blank=True)
    trials_total_capped = models.BooleanField(default=False, help_text="The total is a page cap: show ≥ N.")
    publications_reported_total = models.PositiveIntegerField(null=True, blank=True)
    publications_total_capped = models.BooleanField(default=False)
    trials_note = models.TextField(
        blank=True, help_text="The Clinical Trial Evidence section's prose beside its table."
    )
    publications_note = models.TextField(
        blank=True, help_text="The Literature Evidence section's prose beside its table."
    )
    computed_evidence_level = models.CharField(
        max_length=2, choices=EvidenceLevel.choices, blank=True, help_text="By the rules of dossiers/evidence_level.py."
    )
    evidence_level_reasons = models.JSONField(
        default=list, blank=True, help_text="The items that produced the computed level."
    )
    evidence_refreshed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a refresh of its sources last finished without error."
    )
    version = models.PositiveIntegerField(default=1, help_text="Raised on every edit; guards concurrent saves.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-txgnn_score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dossier", "disease"], name="candidate_dossier_disease_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="candidate_status_updated"),
            models.Index(fields=["-txgnn_score", "id"], name="candidate_score"),
            models.Index(fields=["evidence_level"], name="candidate_level"),
            models.Index(fields=["-updated_at"], name="candidate_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.dossier.drug.name} → {self.disease} ({self.dossier.market.code})"

    def get_absolute_url(self) -> str:
        return reverse("dossiers:candidate_detail", args=[self.pk])

    @property
    def score_percent(self) -> str:
        return "Not available" if self.txgnn_score is None else f"{self.txgnn_score * 100:.2f}%"


class GuardrailCondition(models.Model):
    """A "to proceed, the following is needed" item, tracked until met or waived."""

    class Category(models.TextChoices):
        REGULATORY = "regulatory", "Regulatory"
        SAFETY = "safety", "Safety"
        CLINICAL = "clinical", "Clinical"
        MONITORING = "monitoring", "Monitoring"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MET = "met", "Met"
        WAIVED = "waived", "Waived"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="conditions")
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    category = models.CharField(max_length=12, choices=Category.choices, default=Category.OTHER)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    position = models.PositiveIntegerField(default=0)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    resolution_note = models.TextField(blank=True, help_text="Evidence it was met, or why it was waived.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["candidate", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["candidate", "title"], name="condition_unique")]

    def __str__(self) -> str:
        return self.title


class ClinicalTrial(Provenance):
    """A registered clinical trial, stored once and linked to many candidates."""

    nct_id = models.CharField(max_length=11, unique=True)
    title = models.TextField(blank=True)
    phase = models.CharField(max_length=30, blank=True, help_text='As reported, e.g. "Phase 2/3".')
    allocation = models.CharField(
        max_length=20, blank=True, help_text="The registry's design allocation: RANDOMIZED, NON_RANDOMIZED or NA."
    )
    status = models.CharField(max_length=40, blank=True, help_text='e.g. "Completed", "Active, Not Recruiting".')
    why_stopped = models.TextField(blank=True)
    enrollment = models.PositiveIntegerField(null=True, blank=True)
    start_date = models.CharField(max_length=10, blank=True, help_text="ISO date, may be partial (2024-05).")
    completion_date = models.CharField(max_length=10, blank=True)
    conditions = models.JSONField(default=list, blank=True)
    interventions = models.JSONField(default=list, blank=True)
    brief_summary = models.TextField(blank=True)
    has_results = models.BooleanField(null=True, blank=True)
    last_update = models.CharField(max_length=10, blank=True, help_text="Registry's last update date.")

    class Meta:
        ordering = ["nct_id"]

    def __str__(self) -> str:
        return self.nct_id

    @property
    def registry_url(self) -> str:
        return f"https://clinicaltrials.gov/study/{self.nct_id}"


class Publication(Provenance):
    """A PubMed article, stored once and linked to many candidates."""

    pmid = models.CharField(max_length=12, unique=True)
    year = models.PositiveIntegerField(null=True, blank=True)
    study_type = models.CharField(max_length=60, blank=True, help_text='e.g. "Meta-analysis", "Cohort study".')
    journal = models.CharField(max_length=300, blank=True)
    title = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    doi = models.CharField(max_length=200, blank=True)
    abstract = models.TextField(blank=True)

    class Meta:
        ordering = ["pmid"]

    def __str__(self) -> str:
        return f"PMID {self.pmid}"

    @property
    def pubmed_url(self) -> str:
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"


class CurationStatus(models.TextChoices):
    SUGGESTED = "suggested", "Suggested"
    INCLUDED = "included", "Included"
    EXCLUDED = "excluded", "Excluded"


class CandidateTrial(Provenance):
    """A trial as evidence for one candidate, with its key findings and relevance there."""

    class Relevance(models.TextChoices):
        A = "A", "A — same disease and population"
        B = "B", "B — related disease or population"
        C = "C", "C — mechanism only"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="trial_links")
    trial = models.ForeignKey(ClinicalTrial, on_delete=models.PROTECT, related_name="candidate_links")
    key_findings = models.TextField(blank=True)
    relevance = models.CharField(max_length=1, choices=Relevance.choices, blank=True)
    curation_status = models.CharField(max_length=10, choices=CurationStatus.choices, default=CurationStatus.INCLUDED)
    position = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh first found it.")
    changed_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh last saw the trial change.")
    changed_fields = models.JSONField(default=list, blank=True, help_text="Fields the last change touched.")

    class Meta:
        ordering = ["candidate", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["candidate", "trial"], name="candidatetrial_unique")]

    def __str__(self) -> str:
        return f"{self.candidate_id} ↔ {self.trial_id}"


class CandidatePublication(Provenance):
    """A publication as evidence for one candidate, with its key findings and tier there."""

    class Tier(models.IntegerChoices):
        TIER1 = 1, "Tier 1 — RCT, systematic review, meta-analysis"
        TIER2 = 2, "Tier 2 — prospective or cohort study, review"
        TIER3 = 3, "Tier 3 — case report, basic science"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="publication_links")
    publication = models.ForeignKey(Publication, on_delete=models.PROTECT, related_name="candidate_links")
    key_findings = models.TextField(blank=True)
    tier = models.PositiveSmallIntegerField(choices=Tier.choices, null=True, blank=True)
    curation_status = models.CharField(max_length=10, choices=CurationStatus.choices, default=CurationStatus.INCLUDED)
    position = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh first found it.")
    changed_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh last saw it change.")
    changed_fields = models.JSONField(default=list, blank=True, help_text="Fields the last change touched.")

    class Meta:
        ordering = ["candidate", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["candidate", "publication"], name="candidatepublication_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} ↔ {self.publication_id}"


class ImportRun(models.Model):
    """One run of an importer: what file, by whom, and what it wrote or why it wrote nothing."""

    class Kind(models.TextChoices):
        DOSSIER = "dossier", "Dossier report"
        PREDICTIONS = "predictions", "Prediction CSV"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        UNCHANGED = "unchanged", "Unchanged (already imported)"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    market = models.ForeignKey(Market, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name} ({self.status})"


class RefreshRun(models.Model):
    """One query to one external source for a candidate or a drug: the query log row shown on the page.

    `status` keeps a failed query apart from an empty answer: "error" is never shown as "no evidence".
    Runs of one request (button press or nightly batch) share `request_id`, which is how progress is shown.
    """

    class Source(models.TextChoices):
        CLINICALTRIALS = "clinicaltrials", "ClinicalTrials.gov"
        PUBMED = "pubmed", "PubMed"
        OPENFDA = "openfda", "openFDA"
        RXNAV = "rxnav", "RxNorm"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        EMPTY = "empty", "Empty (no hits)"
        ERROR = "error", "Error"
        NOT_QUERIED = "not_queried", "Not queried"
        PARTIAL = "partial", "Partial (not every record read)"

    request_id = models.UUIDField(db_index=True, help_text="Shared by the runs of one refresh request.")
    candidate = models.ForeignKey(
        Candidate, on_delete=models.CASCADE, null=True, blank=True, related_name="refresh_runs"
    )
    drug = models.ForeignKey(Drug, on_delete=models.CASCADE, null=True, blank=True, related_name="refresh_runs")
    source = models.CharField(max_length=16, choices=Source.choices)
    query = models.TextField(blank=True, help_text="The query URL, keys hidden.")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    total_hits = models.PositiveIntegerField(null=True, blank=True, help_text="Total the source reported.")
    read_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Records read; below total_hits when the run is partial."
    )
    new_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task was sent; empty while it waits for the dispatcher."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A run is about a candidate (trials, literature) or a drug (label, RxNorm), never both.
            models.CheckConstraint(
                condition=models.Q(candidate__isnull=False, drug__isnull=True)
                | models.Q(candidate__isnull=True, drug__isnull=False),
                name="refreshrun_one_subject",
            ),
            models.UniqueConstraint(
                fields=["request_id", "candidate", "source"],
                condition=models.Q(candidate__isnull=False),
                name="refreshrun_candidate_once_per_request",
            ),
            models.UniqueConstraint(
                fields=["request_id", "drug", "source"],
                condition=models.Q(drug__isnull=False),
                name="refreshrun_drug_once_per_request",
            ),
        ]
        indexes = [
            models.Index(fields=["candidate", "-created_at"], name="refreshrun_candidate_recent"),
            # the dispatcher and the stuck-run sweep read only unfinished runs
            models.Index(
                fields=["created_at"],
                name="refreshrun_unfinished",
                condition=models.Q(status__in=["pending", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.status} ({self.request_id})"

    @property
    def is_done(self) -> bool:
        return self.status not in {self.Status.PENDING, self.Status.RUNNING}


class EvidenceChange(models.Model):
    """Something a refresh found new or changed for one candidate; significant ones notify (reviews app)."""

    class Kind(models.TextChoices):
        NEW_TRIAL = "new_trial", "New trial"
        TRIAL_STATUS_CHANGED = "trial_status_changed", "Trial status changed"
        TRIAL_STOPPED_FOR_SAFETY = "trial_stopped_for_safety", "Trial stopped for safety"
        RESULTS_POSTED = "results_posted", "Trial results posted"
        ENROLLMENT_CHANGED = "enrollment_changed", "Trial enrollment changed"
        PHASE_CHANGED = "phase_changed", "Trial phase changed"
        NEW_PUBLICATION = "new_publication", "New publication"
        LABEL_RETRIEVED = "label_retrieved", "Drug label retrieved"
        NEW_BOXED_WARNING = "new_boxed_warning", "New boxed warning"
        LABEL_CHANGED = "label_changed", "Drug label changed"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="evidence_changes")
    refresh_run = models.ForeignKey(
        RefreshRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="changes"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    significant = models.BooleanField(default=False)
    detail = models.JSONField(default=dict, blank=True, help_text="What changed: ids, old and new values.")
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by the reviews-side job once approver and watchers were told."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="evidencechange_unnotified",
                condition=models.Q(significant=True, notified_at__isnull=True),
            ),
            models.Index(fields=["candidate", "-created_at"], name="evidencechange_candidate"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.candidate_id}"


class CandidateVisit(models.Model):
    """When a user last looked at a candidate's evidence: "new since last review" is newer than this."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="visits")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "candidate"], name="candidatevisit_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} saw {self.candidate_id} at {self.seen_at:%Y-%m-%d %H:%M}"
