"""Edits made on the dossiers side void a signature of the content they change (sent by task name)."""

from __future__ import annotations

import pytest

from dossiers.models import Candidate, CandidateTrial, CurationStatus
from dossiers.services import curation, refresh
from reviews.models import AuditEvent, SignOff
from tests.factories import make_trial
from tests.reviews.conftest import Personas, reload, to_signed_off

S = Candidate.Status


def test_including_a_suggested_trial_voids_the_signature(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks
) -> None:
    link = CandidateTrial.objects.create(
        candidate=candidate, trial=make_trial("NCT09999901"), curation_status=CurationStatus.SUGGESTED
    )
    to_signed_off(candidate, people)

    with django_capture_on_commit_callbacks(execute=True):
        refresh.evidence_curate(kind="trial", link_id=link.pk, by=people.curator, decision="included", grade="A")

    signoff = SignOff.objects.get(candidate=candidate)
    assert not signoff.valid and signoff.invalidated_reason == "Signed content changed: trials."
    assert reload(candidate).status == S.DECISION_PENDING
    event = AuditEvent.objects.get(candidate=candidate, action="candidate.signature_invalidate")
    assert (event.actor, event.from_state, event.to_state) == (people.curator, "signed_off", "decision_pending")


def test_excluding_a_suggestion_that_was_never_signed_leaves_the_signature(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks
) -> None:
    link = CandidateTrial.objects.create(
        candidate=candidate, trial=make_trial("NCT09999902"), curation_status=CurationStatus.SUGGESTED
    )
    to_signed_off(candidate, people)

    with django_capture_on_commit_callbacks(execute=True):
        refresh.evidence_curate(kind="trial", link_id=link.pk, by=people.curator, decision="excluded")

    assert SignOff.objects.get(candidate=candidate).valid
    assert reload(candidate).status == S.SIGNED_OFF


@pytest.mark.parametrize("status", [S.SIGNED_OFF, S.CLEARED])
def test_a_curation_edit_of_a_decided_candidate_voids_its_signature(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks, status: str
) -> None:
    to_signed_off(candidate, people)
    Candidate.objects.filter(pk=candidate.pk).update(status=status)
    current = reload(candidate)

    with django_capture_on_commit_callbacks(execute=True):
        curation.candidate_update(
            candidate_id=candidate.pk, by=people.curator, expected_version=current.version, summary="Reworded"
        )

    assert not SignOff.objects.get(candidate=candidate).valid
    assert reload(candidate).status == S.DECISION_PENDING


def test_a_reimport_that_changes_a_signed_dossier_voids_the_signature(
    people: Personas, tmp_path, settings, django_capture_on_commit_callbacks
) -> None:
    from pathlib import Path

    from dossiers.services.dossier_import import dossier_import
    from reviews import services
    from tests.factories import PASSWORD
    from tests.reviews.conftest import to_decision_pending

    seed = Path(settings.BASE_DIR) / "demo" / "IN-lenalidomide.txt"
    candidate = dossier_import(path_or_file=seed, file_name=seed.name, market_code="IN", by=None).candidate
    to_decision_pending(candidate, people)
    services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision="hold")

    with django_capture_on_commit_callbacks(execute=True):
        again = dossier_import(path_or_file=seed, file_name=seed.name, market_code="IN", by=None)
    # the report still says "Proceed with Guardrails": the signed Hold is the approver's, not the report's
    assert again.run.status == "unchanged" and SignOff.objects.get(candidate=candidate).valid
    assert reload(candidate).recommended_decision == "hold"

    edited = tmp_path / seed.name
    edited.write_text(seed.read_text().replace("Landmark trial: lenalidomide", "Pivotal trial: lenalidomide"))
    with django_capture_on_commit_callbacks(execute=True):
        dossier_import(path_or_file=edited, file_name=edited.name, market_code="IN", by=None)

    signoff = SignOff.objects.get(candidate=candidate)
    assert not signoff.valid and signoff.invalidated_reason == "Signed content changed: trials."
    assert reload(candidate).status == S.DECISION_PENDING
