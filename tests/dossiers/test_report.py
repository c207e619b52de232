"""Dossier export: Markdown sections and tables, HTML page, JSON document, command and download view."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CurationStatus,
    DataGap,
    Decision,
    Dossier,
    DrugApproval,
    DrugInteraction,
    GuardrailCondition,
    SafetyStatement,
)
from dossiers.report import NO_PUBLICATIONS, NO_TRIALS, ReviewTrail, render_dossier
from portal.roles import Role
from tests.factories import (
    PASSWORD,
    make_candidate,
    make_dossier,
    make_drug,
    make_market,
    make_publication,
    make_trial,
    make_user,
)

pytestmark = pytest.mark.django_db

SECTIONS_IN_ORDER = [
    "# Lenalidomide",
    "# Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia",
    "## One-Sentence Summary",
    "## Quick Overview",
    "## Why is This Prediction Reasonable?",
    "## Clinical Trial Evidence",
    "## Literature Evidence",
    "## India Market Information",
    "## Cytotoxicity",
    "## Safety Considerations",
    "## Data Gaps",
    "## Conclusion and Next Steps",
    "## Disclaimer",
]


def _full_dossier(
    *, trials: int = 2, publications: int = 1, drug_name: str = "Lenalidomide"
) -> tuple[Dossier, Candidate]:
    """A lenalidomide-like dossier with every section filled, plus excluded and suggested evidence."""
    drug = make_drug(drug_name, original_indications="Multiple myeloma; MDS with del(5q)")
    DrugApproval.objects.create(drug=drug, agency="US FDA", indications="multiple myeloma, del(5q) MDS")
    dossier = make_dossier(
        drug=drug,
        market=make_market("IN", "India"),
        market_status=Dossier.MarketStatus.NOT_MARKETED,
        registration_count=0,
        reported_indication_count=6,
        market_information="Lenalidomide is not registered or marketed in India.",
        cytotoxicity_classification="Targeted therapy / IMiD",
        myelosuppression_risk="High — neutropenia",
        emetogenicity="Low",
        monitoring_items="CBC with differential",
        handling_protection="Oral capsule; REMS",
        interaction_total=347,
        safety_note="Please refer to the US FDA-approved package insert.",
    )
    candidate = make_candidate(
        dossier,
        "Myeloid Leukemia",
        title="Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia",
        txgnn_score=0.99486,
        evidence_level="L2",
        recommended_decision=Decision.GUARDRAILS,
        summary="Lenalidomide is an oral IMiD.",
        rationale="It binds cereblon.",
        conclusion_rationale="Robust clinical evidence in myeloid malignancies.",
        trials_reported_total=50,
        trials_total_capped=True,
        publications_reported_total=7,
    )
    _add_evidence(candidate, trials=trials, publications=publications)
    for pos, (name, severity, note) in enumerate(
        [
            ("Rosuvastatin", "major", "risk of increased statin levels"),
            ("Simvastatin", "major", "risk of increased statin levels"),
            ("Metformin", "unknown", ""),
        ]
    ):
        DrugInteraction.objects.create(
            dossier=dossier, interacting_drug=name, severity=severity, note=note, position=pos
        )
    SafetyStatement.objects.create(dossier=dossier, kind=SafetyStatement.Kind.BOXED_WARNING, text="myelosuppression")
    DataGap.objects.create(dossier=dossier, code="DG001", description="Label warnings missing", severity="blocking")
    GuardrailCondition.objects.create(
        candidate=candidate, title="Regulatory pathway", detail="Establish an India access pathway", position=0
    )
    GuardrailCondition.objects.create(
        candidate=candidate, title="Renal function assessment", detail="CrCl-based dosing", status="met", position=1
    )
    return dossier, candidate


def _add_evidence(candidate: Candidate, *, trials: int, publications: int) -> None:
    for i in range(trials):
        trial = make_trial(phase="Phase 3", status="Active, Not Recruiting", enrollment=200 + i)
        CandidateTrial.objects.create(candidate=candidate, trial=trial, key_findings=f"Finding {i}", position=i)
    for i in range(publications):
        pub = make_publication(year=2018, study_type="Meta-analysis", journal="Cancer Manag Res")
        CandidatePublication.objects.create(
            candidate=candidate, publication=pub, key_findings=f"Paper finding {i}", position=i
        )
    hidden_trial = make_trial(nct_id=f"NCT9999{candidate.pk:04d}")
    CandidateTrial.objects.create(
        candidate=candidate, trial=hidden_trial, curation_status=CurationStatus.EXCLUDED, position=99
    )
    hidden_pub = make_publication(pmid=f"9999{candidate.pk:04d}")
    CandidatePublication.objects.create(
        candidate=candidate, publication=hidden_pub, curation_status=CurationStatus.SUGGESTED, position=99
    )


def _section(markdown: str, heading: str) -> str:
    """The text between a heading and the next heading."""
    start = markdown.index(heading + "\n") + len(heading)
    following = re.search(r"^#{1,2} ", markdown[start:], re.M)
    return markdown[start : start + following.start()] if following else markdown[start:]


def test_markdown_has_the_seed_sections_in_order() -> None:
    dossier, _ = _full_dossier()
    markdown = render_dossier(dossier=dossier, fmt="md")
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert headings == SECTIONS_IN_ORDER


def test_markdown_header_and_quick_overview() -> None:
    dossier, _ = _full_dossier()
    markdown = render_dossier(dossier=dossier, fmt="md")
    assert "Evidence Level: **L2** | Predicted Indications: **6**" in markdown
    overview = _section(markdown, "## Quick Overview")
    for row in [
        "| Original Indication | Multiple myeloma; MDS with del(5q) |",
        "| Predicted New Indication | Myeloid Leukemia |",
        "| TxGNN Prediction Score | 99.49% |",
        "| Evidence Level | L2 |",
        "| India Market Status | ✗ Not Marketed |",
        "| Number of Registrations | 0 |",
        "| Recommended Decision | Proceed with Guardrails |",
    ]:
        assert row in overview


def test_markdown_evidence_tables_hold_only_included_rows() -> None:
    dossier, candidate = _full_dossier()
    markdown = render_dossier(dossier=dossier, fmt="md")
    trials = _section(markdown, "## Clinical Trial Evidence")
    first = candidate.trial_links.order_by("position").first()
    assert first is not None
    nct = first.trial.nct_id
    assert (
        f"| [{nct}](https://clinicaltrials.gov/study/{nct}) | Phase 3 | Active, Not Recruiting | 200 | Finding 0 |"
        in (trials)
    )
    assert "Registered trials found: **≥ 50**" in trials
    assert f"NCT9999{candidate.pk:04d}" not in markdown
    literature = _section(markdown, "## Literature Evidence")
    pub = candidate.publication_links.get(position=0).publication
    assert (
        f"| [{pub.pmid}](https://pubmed.ncbi.nlm.nih.gov/{pub.pmid}/) | 2018 | Meta-analysis | Cancer Manag Res "
        "| Paper finding 0 |" in literature
    )
    assert "Publications found: **7**" in literature
    assert f"9999{candidate.pk:04d}" not in markdown


def test_markdown_market_cytotoxicity_safety_and_conclusion() -> None:
    dossier, _ = _full_dossier()
    markdown = render_dossier(dossier=dossier, fmt="md")
    market = _section(markdown, "## India Market Information")
    assert "not registered or marketed in India" in market
    assert "US FDA" not in market  # named in the market text already
    cytotoxicity = _section(markdown, "## Cytotoxicity")
    assert "| Myelosuppression Risk | High — neutropenia |" in cytotoxicity
    assert "| Emetogenicity Classification | Low |" in cytotoxicity
    safety = _section(markdown, "## Safety Considerations")
    assert "**Drug Interactions:** 347 total interactions identified in the DDI database." in safety
    assert "- **Major severity:** Rosuvastatin, Simvastatin — risk of increased statin levels" in safety
    assert "- **Unknown severity:** Metformin, and others" in safety
    assert (
        "> Please refer to the US FDA-approved package insert. Known Black Box Warnings include: myelosuppression."
        in safety
    )
    assert "| DG001 | Label warnings missing | Blocking | Open |" in _section(markdown, "## Data Gaps")
    conclusion = _section(markdown, "## Conclusion and Next Steps")
    assert "**Decision: Proceed with Guardrails**" in conclusion
    assert "**Rationale:**\nRobust clinical evidence" in conclusion
    assert "- **Regulatory pathway:** Establish an India access pathway *(status: open)*" in conclusion
    assert "- **Renal function assessment:** CrCl-based dosing *(status: met)*" in conclusion
    assert "research purposes only" in _section(markdown, "## Disclaimer")


def test_markdown_empty_sections_dins_and_missing_score() -> None:
    market = make_market("CA", "Canada", registration_term="DINs")
    dossier = make_dossier(market=market, market_status=Dossier.MarketStatus.MARKETED, registration_count=3)
    make_candidate(dossier, "Gout", txgnn_score=None)
    markdown = render_dossier(dossier=dossier, fmt="md")
    assert "| Number of DINs | 3 |" in markdown
    assert "| Canada Market Status | ✓ Marketed |" in markdown
    assert "| TxGNN Prediction Score | Not available |" in markdown
    assert NO_TRIALS in _section(markdown, "## Clinical Trial Evidence")
    assert NO_PUBLICATIONS in _section(markdown, "## Literature Evidence")
    assert "Cytotoxicity" not in markdown
    assert "Data Gaps" not in markdown
    assert "The total number of interactions is not available." in markdown
    assert "Key interactions include" not in markdown


def test_market_section_lists_approvals_when_there_is_no_market_text() -> None:
    dossier, _ = _full_dossier()
    dossier.market_information = ""
    dossier.save()
    market = _section(render_dossier(dossier=dossier, fmt="md"), "## India Market Information")
    assert "Approvals elsewhere:\n\n- **US FDA:** multiple myeloma, del(5q) MDS" in market
    DrugApproval.objects.all().delete()
    market = _section(render_dossier(dossier=dossier, fmt="md"), "## India Market Information")
    assert "No market information recorded." in market


def test_safety_statements_read_as_the_published_sentences() -> None:
    dossier = make_dossier()
    for pos, (kind, text) in enumerate(
        [
            (SafetyStatement.Kind.BOXED_WARNING, "myelosuppression"),
            (SafetyStatement.Kind.BOXED_WARNING, "thrombosis (with dexamethasone, mainly)"),
            (SafetyStatement.Kind.BOXED_WARNING, "embryo-fetal toxicity."),
            (SafetyStatement.Kind.CONTRAINDICATION, "pregnancy"),
            (SafetyStatement.Kind.INTERACTION, "Digoxin: monitor levels"),
        ]
    ):
        SafetyStatement.objects.create(dossier=dossier, kind=kind, text=text, position=pos)
    safety = _section(render_dossier(dossier=dossier, fmt="md"), "## Safety Considerations")
    assert (
        "> Known Black Box Warnings include: myelosuppression, thrombosis (with dexamethasone, mainly), "
        "and embryo-fetal toxicity. Contraindications include: pregnancy. "
        "The label's drug interactions section says: Digoxin: monitor levels." in safety
    )


def test_dossier_without_candidates_still_exports() -> None:
    dossier = make_dossier()
    markdown = render_dossier(dossier=dossier, fmt="md")
    assert "Evidence Level: **Not available** | Predicted Indications: **0**" in markdown
    assert "## Conclusion and Next Steps" not in markdown
    assert json.loads(render_dossier(dossier=dossier, fmt="json"))["candidate"] is None


def test_primary_candidate_is_the_highest_scored_and_others_are_listed() -> None:
    dossier = make_dossier(drug=make_drug("Metformin"))
    make_candidate(dossier, "Unscored", txgnn_score=None, evidence_level="L1")
    make_candidate(dossier, "Low", txgnn_score=0.2)
    top = make_candidate(dossier, "Top", txgnn_score=0.8, evidence_level="L3")
    markdown = render_dossier(dossier=dossier, fmt="md")
    assert "| Predicted New Indication | Top |" in markdown
    assert "Evidence Level: **L1** | Predicted Indications: **3**" in markdown  # best of all candidates
    others = _section(markdown, "## Other Predicted Indications")
    assert "| Low | 20.00% | L5 | Predicted | Not decided |" in others
    assert "| Unscored | Not available | L1 | Predicted | Not decided |" in others
    assert "| Top |" not in others
    chosen = dossier.candidates.get(disease="Low")
    markdown = render_dossier(dossier=dossier, candidate=chosen, fmt="md")
    assert "| Predicted New Indication | Low |" in markdown
    assert f"| {top.disease} | 80.00% |" in _section(markdown, "## Other Predicted Indications")


def test_candidate_of_another_dossier_is_refused() -> None:
    dossier = make_dossier()
    stranger = make_candidate()
    with pytest.raises(Candidate.DoesNotExist):
        render_dossier(dossier=dossier, candidate=stranger, fmt="md")


def test_json_is_structured_stable_and_holds_only_included_evidence() -> None:
    dossier, candidate = _full_dossier()
    text = render_dossier(dossier=dossier, fmt="json")
    document = json.loads(text)
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert text == render_dossier(dossier=dossier, fmt="json")
    assert document["dossier"]["evidence_level"] == "L2"
    assert document["dossier"]["interaction_total"] == 347
    assert [i["interacting_drug"] for i in document["dossier"]["interactions"]] == [
        "Rosuvastatin",
        "Simvastatin",
        "Metformin",
    ]
    full = document["candidate"]
    assert full["disease"] == "Myeloid Leukemia"
    assert full["trials_reported_total"] == 50 and full["trials_total_capped"] is True
    assert len(full["trials"]) == 2 and f"NCT9999{candidate.pk:04d}" not in text
    assert [p["key_findings"] for p in full["publications"]] == ["Paper finding 0"]
    assert [c["status"] for c in full["conditions"]] == ["open", "met"]
    assert document["drug"]["approvals"] == [{"agency": "US FDA", "indications": "multiple myeloma, del(5q) MDS"}]
    assert document["review"] is None


def test_html_is_a_sanitised_printable_page() -> None:
    dossier, candidate = _full_dossier()
    candidate.summary = 'Safe <script>alert("x")</script> <img src=x onerror=alert(1)>'
    candidate.save()
    page = render_dossier(dossier=dossier, fmt="html")
    assert page.startswith("<!DOCTYPE html>")
    assert "@media print" in page
    assert "<table>" in page and "<th>Trial Number</th>" in page
    assert '<a href="https://clinicaltrials.gov/study/' in page
    assert "<script" not in page and "onerror" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in page


def test_review_trail_hook_adds_its_section() -> None:
    dossier, _ = _full_dossier()
    trail = ReviewTrail(signatures=("2026-11-25 — Signed off by A. Approver",))
    markdown = render_dossier(dossier=dossier, fmt="md", review_trail=trail)
    assert "- 2026-11-25 — Signed off by A. Approver" in _section(markdown, "## Review and Sign-off")
    assert "Review and Sign-off" not in render_dossier(dossier=dossier, fmt="md")


def _queries_to_render(dossier: Dossier, fmt: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        render_dossier(dossier=dossier, fmt=fmt)  # type: ignore[arg-type]
    return len(ctx.captured_queries)


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_query_count_does_not_grow_with_evidence(fmt: str) -> None:
    small, _ = _full_dossier(trials=1, publications=1, drug_name="Small")
    large, candidate = _full_dossier(trials=25, publications=30, drug_name="Large")
    for i in range(10):
        GuardrailCondition.objects.create(candidate=candidate, title=f"Extra {i}", position=10 + i)
        DrugInteraction.objects.create(dossier=large, interacting_drug=f"Other {i}", position=10 + i)
        make_candidate(large, f"Other indication {i}")
    # dossier, approvals, interactions, statements, gaps, candidates, trials, publications, conditions
    assert [_queries_to_render(small, fmt), _queries_to_render(large, fmt)] == [9, 9]


# Management command


def test_command_prints_to_stdout_and_writes_files(tmp_path: Path) -> None:
    _full_dossier()
    out = StringIO()
    call_command("export_dossier", "lenalidomide", "--market", "in", "--format", "md", stdout=out)
    assert "| Predicted New Indication | Myeloid Leukemia |" in out.getvalue()
    target = tmp_path / "report.json"
    call_command(
        "export_dossier",
        "Lenalidomide",
        "--market",
        "IN",
        "--candidate",
        "myeloid leukemia",
        "--format",
        "json",
        "--output",
        str(target),
        stderr=StringIO(),
    )
    assert json.loads(target.read_text(encoding="utf-8"))["candidate"]["disease"] == "Myeloid Leukemia"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["aspirin", "--market", "IN"], "'aspirin'"),
        (["lenalidomide", "--market", "XX"], "'XX'"),
        (["lenalidomide", "--market", "IN", "--candidate", "Gout"], "'Gout'"),
    ],
)
def test_command_names_what_it_cannot_find(args: list[str], named: str) -> None:
    _full_dossier()
    with pytest.raises(CommandError, match=named):
        call_command("export_dossier", *args, stdout=StringIO())


# Download view: role matrix


@pytest.fixture
def exported() -> Dossier:
    dossier, _ = _full_dossier()
    return dossier


def _client_for(user: object | None) -> Client:
    client = Client()
    if user is not None:
        assert client.login(username=user.username, password=PASSWORD)  # type: ignore[attr-defined]
    return client


def test_anonymous_is_sent_to_login(exported: Dossier) -> None:
    url = reverse("dossier_export", args=[exported.pk, "md"])
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_of_another_market_gets_404(exported: Dossier) -> None:
    outsider = make_user("outsider", Role.CURATOR, markets=[make_market("CA", "Canada")])
    response = _client_for(outsider).get(reverse("dossier_export", args=[exported.pk, "md"]))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("fmt", "content_type", "marker"),
    [
        ("md", "text/markdown; charset=utf-8", "# Lenalidomide"),
        ("html", "text/html; charset=utf-8", "<!DOCTYPE html>"),
        ("json", "application/json", '"format": "portal.dossier-export/1"'),
    ],
)
def test_member_downloads_each_format(exported: Dossier, fmt: str, content_type: str, marker: str) -> None:
    member = make_user("member", Role.VIEWER, markets=[exported.market])
    response = _client_for(member).get(reverse("dossier_export", args=[exported.pk, fmt]))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="lenalidomide-IN-myeloid-leukemia.{fmt}"'
    assert marker in response.content.decode()


def test_admin_sees_every_market(exported: Dossier) -> None:
    admin = make_user("boss", Role.ADMIN)
    response = _client_for(admin).get(reverse("dossier_export", args=[exported.pk, "json"]))
    assert response.status_code == 200


def test_member_picks_a_candidate_but_not_one_of_another_dossier(exported: Dossier) -> None:
    member = make_user("member", Role.VIEWER, markets=[exported.market])
    other = make_candidate(exported, "Anaemia", txgnn_score=0.1)
    url = reverse("dossier_export", args=[exported.pk, "md"])
    client = _client_for(member)
    response = client.get(url, {"candidate": other.pk})
    assert response.status_code == 200
    assert "| Predicted New Indication | Anaemia |" in response.content.decode()
    assert response["Content-Disposition"].endswith('lenalidomide-IN-anaemia.md"')
    assert client.get(url, {"candidate": make_candidate().pk}).status_code == 404
    assert client.get(url, {"candidate": "x"}).status_code == 404


def test_unknown_format_and_post_are_refused(exported: Dossier) -> None:
    client = _client_for(make_user("member", Role.VIEWER, markets=[exported.market]))
    assert client.get(f"/dossiers/{exported.pk}/export.pdf").status_code == 404
    assert client.post(reverse("dossier_export", args=[exported.pk, "md"])).status_code == 405
