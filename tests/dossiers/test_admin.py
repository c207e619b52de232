"""Curation admin and the curation services: pages, role matrix, version check, actions, audit."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models
from django.forms import BooleanField
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dossiers.admin import VersionedForm
from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    DataGap,
    Dossier,
    DrugApproval,
    DrugInteraction,
    EvidenceChange,
    GuardrailCondition,
    ImportRun,
    Market,
    Prediction,
    RefreshRun,
    SafetyStatement,
)
from dossiers.services.curation import StaleEdit, candidate_update, dossier_update
from portal.roles import Role
from tests.factories import (
    make_candidate,
    make_dossier,
    make_drug,
    make_market,
    make_publication,
    make_trial,
    make_user,
)

pytestmark = pytest.mark.django_db
PAGE_QUERY_LIMIT = 15


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    india: Market
    dossier: Dossier
    candidate: Candidate
    prediction: Prediction
    superuser: User
    curator: User
    curator2: User
    viewer: User
    outsider: User


@pytest.fixture
def world() -> World:
    india, canada = make_market("IN", "India"), make_market("CA", "Canada")
    drug = make_drug("Lenalidomide", drugbank_id="DB00480")
    DrugApproval.objects.create(drug=drug, agency="US FDA", indications="Multiple myeloma")
    dossier = make_dossier(drug, india, interaction_total=347, market_information="Marketed by two companies.")
    DrugInteraction.objects.create(dossier=dossier, interacting_drug="Digoxin", severity="moderate")
    SafetyStatement.objects.create(dossier=dossier, kind="boxed_warning", text="Embryo-fetal toxicity")
    DataGap.objects.create(dossier=dossier, code="DG001", description="Label warnings missing", severity="blocking")
    now = timezone.now()
    prediction = Prediction.objects.create(
        market=india, drug=drug, disease="Myeloid Leukemia", score=0.99, rank=1, imported_at=now
    )
    candidate = make_candidate(dossier, "Myeloid Leukemia", prediction=prediction, summary="First summary.")
    add_links(candidate, 2)
    GuardrailCondition.objects.create(candidate=candidate, title="Confirm label warnings")
    ImportRun.objects.create(kind="dossier", file_name="IN-lenalidomide.txt", sha256="0" * 64, market=india)
    run = RefreshRun.objects.create(
        request_id="00000000-0000-0000-0000-000000000001", candidate=candidate, source="pubmed"
    )
    EvidenceChange.objects.create(candidate=candidate, refresh_run=run, kind="new_publication")
    superuser = User.objects.create_superuser("root", "root@example.org", "x")
    curator = make_user("curator", Role.CURATOR, markets=[india], is_staff=True)
    CandidateVisit.objects.create(user=curator, candidate=candidate, seen_at=now)
    return World(
        india=india,
        dossier=dossier,
        candidate=candidate,
        prediction=prediction,
        superuser=superuser,
        curator=curator,
        curator2=make_user("curator2", Role.CURATOR, markets=[india], is_staff=True),
        viewer=make_user("viewer", Role.VIEWER, markets=[india], is_staff=True),
        outsider=make_user("outsider", Role.CURATOR, markets=[canada], is_staff=True),
    )


def add_links(candidate: Candidate, n: int) -> None:
    start = candidate.trial_links.count()
    for i in range(start, start + n):
        CandidateTrial.objects.create(candidate=candidate, trial=make_trial(), key_findings=f"finding {i}", position=i)
        CandidatePublication.objects.create(candidate=candidate, publication=make_publication(), tier=1, position=i)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_url(obj: models.Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def admin_form_data(response: Any, **changes: Any) -> dict[str, Any]:
    """The POST a browser would send for the admin change form as rendered, with `changes` applied."""
    context = response.context  # type: ignore[attr-defined]
    data: dict[str, Any] = {}
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
        forms += inline.formset.forms
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field, BooleanField):
                if value:
                    data[form.add_prefix(name)] = "on"
                continue
            data[form.add_prefix(name)] = "" if value is None else value
    data.update(changes)
    return data


def registered_objects(w: World) -> list[models.Model]:
    """One row of every dossiers model."""
    models_ = [
        Market,
        Prediction,
        DrugInteraction,
        SafetyStatement,
        DataGap,
        DrugApproval,
        GuardrailCondition,
        CandidateTrial,
        CandidatePublication,
        ImportRun,
        RefreshRun,
        EvidenceChange,
        CandidateVisit,
    ]
    rows: list[models.Model] = [w.dossier, w.dossier.drug, w.candidate]
    rows += [model.objects.first() for model in models_]  # type: ignore[attr-defined]
    rows += [w.candidate.trial_links.first().trial, w.candidate.publication_links.first().publication]  # type: ignore[union-attr]
    return rows


# Every page renders


def test_every_dossiers_model_is_registered() -> None:
    from django.apps import apps
    from django.contrib import admin

    missing = [m.__name__ for m in apps.get_app_config("dossiers").get_models() if m not in admin.site._registry]
    assert missing == []


def test_every_changelist_and_change_page_renders_for_a_superuser(world: World) -> None:
    client = client_for(world.superuser)
    for obj in registered_objects(world):
        meta = obj._meta
        for url in [reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"), change_url(obj)]:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200, url
            assert len(queries) <= PAGE_QUERY_LIMIT, (url, len(queries))


def test_add_pages_render_for_a_curator(world: World) -> None:
    client = client_for(world.curator)
    for name in ["candidate", "dossier", "drug", "clinicaltrial", "publication"]:
        assert client.get(reverse(f"admin:dossiers_{name}_add")).status_code == 200, name


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_candidate_change_page_queries_do_not_grow_with_evidence(world: World) -> None:
    client = client_for(world.curator)
    url = change_url(world.candidate)
    before = _count(client, url)
    add_links(world.candidate, 10)
    assert _count(client, url) == before


def test_prediction_and_candidate_lists_do_not_grow_with_rows(world: World) -> None:
    client = client_for(world.superuser)
    urls = [reverse("admin:dossiers_prediction_changelist"), reverse("admin:dossiers_candidate_changelist")]
    before = [_count(client, url) for url in urls]
    now = timezone.now()
    for i in range(20):
        drug = make_drug()
        Prediction.objects.create(market=world.india, drug=drug, disease=f"D{i}", score=0.5, imported_at=now)
        make_candidate(make_dossier(drug, world.india), f"D{i}")
    assert [_count(client, url) for url in urls] == before


def test_prediction_list_never_counts_the_whole_table(world: World) -> None:
    with CaptureQueriesContext(connection) as queries:
        client_for(world.superuser).get(reverse("admin:dossiers_prediction_changelist"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "prediction" in q["sql"]]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


# Role matrix


def test_curator_edits_a_candidate_and_its_evidence(world: World) -> None:
    client = client_for(world.curator)
    url = change_url(world.candidate)
    data = admin_form_data(client.get(url), summary="Curated summary.")
    data["trial_links-0-key_findings"] = "Curated finding."
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    candidate = Candidate.objects.get(pk=world.candidate.pk)
    assert (candidate.summary, candidate.version) == ("Curated summary.", 2)
    assert candidate.trial_links.get(position=0).key_findings == "Curated finding."


def test_curator_edits_a_dossier_and_its_data_gaps(world: World) -> None:
    client = client_for(world.curator)
    url = change_url(world.dossier)
    data = admin_form_data(client.get(url), safety_note="See the package insert.")
    data["data_gaps-0-status"] = "resolved"
    assert client.post(url, data).status_code == 302
    dossier = Dossier.objects.get(pk=world.dossier.pk)
    assert (dossier.safety_note, dossier.version) == ("See the package insert.", 2)
    assert dossier.data_gaps.get().status == "resolved"


def test_curator_adds_a_candidate_through_the_service(world: World) -> None:
    client = client_for(world.curator)
    response = client.post(
        reverse("admin:dossiers_candidate_add"),
        {
            "dossier": world.dossier.pk,
            "disease": "Mantle cell lymphoma",
            "evidence_level": "L5",
            **{f"{p}-TOTAL_FORMS": 0 for p in ["trial_links", "publication_links", "conditions"]},
            **{f"{p}-INITIAL_FORMS": 0 for p in ["trial_links", "publication_links", "conditions"]},
        },
    )
    assert response.status_code == 302
    assert world.dossier.candidates.filter(disease="Mantle cell lymphoma", version=1).exists()


def test_viewer_sees_but_cannot_change(world: World) -> None:
    client = client_for(world.viewer)
    url = change_url(world.candidate)
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="summary"' not in page.content.decode()  # read-only view
    data = admin_form_data(client_for(world.curator).get(url), summary="Viewer's summary.")
    assert client.post(url, data).status_code == 403
    assert client.get(reverse("admin:dossiers_candidate_add")).status_code == 403
    assert Candidate.objects.get(pk=world.candidate.pk).summary == "First summary."


def test_non_staff_user_is_sent_to_the_admin_login(world: World) -> None:
    member = make_user("member", Role.CURATOR, markets=[world.india])
    response = client_for(member).get(change_url(world.candidate))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_curator_of_another_market_neither_sees_nor_changes(world: World) -> None:
    client = client_for(world.outsider)
    listing = client.get(reverse("admin:dossiers_candidate_changelist")).content.decode()
    assert "Myeloid Leukemia" not in listing
    url = change_url(world.candidate)
    assert client.get(url).status_code == 302  # admin: "doesn't exist", back to the index
    data = admin_form_data(client_for(world.curator).get(url), summary="Outsider's summary.")
    client.post(url, data)
    assert Candidate.objects.get(pk=world.candidate.pk).summary == "First summary."


def test_curator_cannot_change_market_teams(world: World) -> None:
    client = client_for(world.curator)
    url = change_url(world.india)
    assert client.get(url).status_code == 200
    assert client.post(url, {"code": "IN", "name": "India", "members": [world.outsider.pk]}).status_code == 403
    assert not world.india.members.filter(pk=world.outsider.pk).exists()


def test_superuser_manages_market_team_with_filter_horizontal(world: World) -> None:
    client = client_for(world.superuser)
    url = change_url(world.india)
    assert "selectfilter" in client.get(url).content.decode().lower()
    data = {"code": "IN", "name": "India", "registration_term": "registrations", "members": [world.outsider.pk]}
    assert client.post(url, data).status_code == 302
    assert list(world.india.members.all()) == [world.outsider]


def test_decision_fields_are_read_only_once_in_review(world: World) -> None:
    Candidate.objects.filter(pk=world.candidate.pk).update(status="in_review")
    client = client_for(world.curator)
    url = change_url(world.candidate)
    page = client.get(url)
    assert 'name="recommended_decision"' not in page.content.decode()
    data = admin_form_data(page, recommended_decision="go", summary="Still curatable.")
    assert client.post(url, data).status_code == 302
    candidate = Candidate.objects.get(pk=world.candidate.pk)
    assert (candidate.recommended_decision, candidate.summary) == ("", "Still curatable.")


# Two people editing the same candidate


def test_the_later_of_two_saves_is_refused_and_overwrites_nothing(world: World) -> None:
    first, second = client_for(world.curator), client_for(world.curator2)
    url = change_url(world.candidate)
    first_form, second_form = first.get(url), second.get(url)
    assert first.post(url, admin_form_data(first_form, summary="First editor.")).status_code == 302
    data = admin_form_data(second_form, summary="Second editor.", rationale="Second rationale.")
    data["trial_links-0-key_findings"] = "Second finding."
    response = second.post(url, data)
    assert response.status_code == 200
    assert "Curator Tester changed this candidate at" in response.content.decode()
    assert "your changes were not saved" in response.content.decode()
    candidate = Candidate.objects.get(pk=world.candidate.pk)
    assert (candidate.summary, candidate.rationale, candidate.version) == ("First editor.", "", 2)
    assert candidate.trial_links.get(position=0).key_findings == "finding 0"


def test_a_stale_save_caught_under_the_lock_rolls_back_everything(world: World, monkeypatch: Any) -> None:
    """The form check passed (a save slipped in between): the service refuses and the inlines are undone."""
    client = client_for(world.curator)
    url = change_url(world.candidate)
    data = admin_form_data(client.get(url), summary="Late summary.")
    data["expected_version"] = 0
    data["trial_links-0-key_findings"] = "Late finding."
    monkeypatch.setattr(VersionedForm, "clean", lambda form: form.cleaned_data)
    response = client.post(url, data, follow=True)
    assert "your changes were not saved" in response.content.decode()
    candidate = Candidate.objects.get(pk=world.candidate.pk)
    assert (candidate.summary, candidate.version) == ("First summary.", 1)
    assert candidate.trial_links.get(position=0).key_findings == "finding 0"


# Actions


def test_promote_action_calls_the_service(world: World) -> None:
    drug = make_drug("Thalidomide")
    fresh = Prediction.objects.create(
        market=world.india, drug=drug, disease="Myelofibrosis", score=0.8, imported_at=timezone.now()
    )
    response = client_for(world.curator).post(
        reverse("admin:dossiers_prediction_changelist"),
        {"action": "promote", "_selected_action": [fresh.pk, world.prediction.pk]},
        follow=True,
    )
    assert "2 prediction(s) promoted" in response.content.decode()
    assert Candidate.objects.get(disease="Myelofibrosis").prediction == fresh
    assert Candidate.objects.filter(disease="Myeloid Leukemia").count() == 1  # idempotent


def test_export_action_downloads_markdown(world: World) -> None:
    url = reverse("admin:dossiers_dossier_changelist")
    response = client_for(world.viewer).post(url, {"action": "export_markdown", "_selected_action": [world.dossier.pk]})
    assert response["Content-Type"].startswith("text/markdown")
    assert "Lenalidomide" in response.content.decode()
    other = make_dossier(make_drug("Pomalidomide"), world.india)
    response = client_for(world.viewer).post(
        url, {"action": "export_markdown", "_selected_action": [world.dossier.pk, other.pk]}
    )
    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == ["Lenalidomide-IN.md", "Pomalidomide-IN.md"]


# Services


def test_candidate_update_checks_the_version_and_raises_it(world: World) -> None:
    updated = candidate_update(candidate_id=world.candidate.pk, by=world.curator, expected_version=1, summary="New.")
    assert updated.version == 2
    with pytest.raises(StaleEdit, match="your changes were not saved"):
        candidate_update(candidate_id=world.candidate.pk, by=world.curator2, expected_version=1, summary="Lost.")
    assert Candidate.objects.get(pk=world.candidate.pk).summary == "New."


@pytest.mark.parametrize("who", ["viewer", "outsider"])
def test_only_curators_of_the_market_edit(world: World, who: str) -> None:
    with pytest.raises(PermissionDenied):
        candidate_update(candidate_id=world.candidate.pk, by=getattr(world, who), expected_version=1, summary="x")
    with pytest.raises(PermissionDenied):
        dossier_update(dossier_id=world.dossier.pk, by=getattr(world, who), expected_version=1, safety_note="x")
    assert Candidate.objects.get(pk=world.candidate.pk).version == 1


def test_bad_edits_are_refused_with_the_field_named(world: World) -> None:
    pk = world.candidate.pk
    with pytest.raises(ValidationError, match="status"):
        candidate_update(candidate_id=pk, by=world.curator, expected_version=1, status="signed_off")
    with pytest.raises(ValidationError, match="evidence_level"):
        candidate_update(candidate_id=pk, by=world.curator, expected_version=1, evidence_level="L9")
    make_candidate(world.dossier, "Mantle cell lymphoma")
    with pytest.raises(ValidationError, match="already exists"):
        candidate_update(candidate_id=pk, by=world.curator, expected_version=1, disease="Mantle cell lymphoma")
    Candidate.objects.filter(pk=pk).update(status="signed_off")
    with pytest.raises(ValidationError, match="reviewers and approver"):
        candidate_update(candidate_id=pk, by=world.curator, expected_version=1, recommended_decision="go")
    with pytest.raises(ValidationError, match="Candidate 0 does not exist"):
        candidate_update(candidate_id=0, by=world.curator, expected_version=1, summary="x")
    candidate = Candidate.objects.get(pk=pk)
    assert (candidate.version, candidate.disease, candidate.evidence_level) == (1, "Myeloid Leukemia", "L5")


# Audit (the reviews trigger, PostgreSQL only)


@pytest.mark.postgres
def test_admin_edits_are_audited_with_actor_and_before_after(world: World) -> None:
    from reviews.models import AuditEvent

    client = client_for(world.curator)
    url = change_url(world.candidate)
    data = admin_form_data(client.get(url), summary="Audited summary.")
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]
    data.update(
        {
            "conditions-TOTAL_FORMS": 2,
            "conditions-1-title": "Monitor blood counts",
            "conditions-1-category": "monitoring",
            "conditions-1-position": 1,
            "conditions-1-due_date": dt.date(2030, 1, 1).isoformat(),
        }
    )
    assert client.post(url, data).status_code == 302
    events = AuditEvent.objects.filter(pk__gt=last)
    update = events.get(object_type="dossiers.candidate", action="row.update")
    assert update.actor == world.curator
    assert update.candidate_id == world.candidate.pk
    assert update.changes == {"summary": ["First summary.", "Audited summary."]}
    insert = events.get(object_type="dossiers.guardrailcondition", action="row.insert")
    assert insert.actor == world.curator
    assert insert.changes["title"] == [None, "Monitor blood counts"]


@pytest.mark.postgres
def test_service_edit_is_audited_and_a_refused_one_leaves_no_row(world: World) -> None:
    from reviews.models import AuditEvent

    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]
    dossier_update(
        dossier_id=world.dossier.pk, by=world.curator, expected_version=1, reason="label read", interaction_total=350
    )
    event = AuditEvent.objects.get(pk__gt=last)
    assert (event.actor, event.reason, event.changes) == (
        world.curator,
        "label read",
        {"interaction_total": [347, 350]},
    )
    with pytest.raises(StaleEdit):
        dossier_update(dossier_id=world.dossier.pk, by=world.curator, expected_version=1, interaction_total=1)
    assert AuditEvent.objects.filter(pk__gt=last).count() == 1


def test_market_filters_offer_only_the_users_markets(world: World) -> None:
    for name in ["candidate", "dossier", "prediction"]:
        page = client_for(world.curator).get(reverse(f"admin:dossiers_{name}_changelist")).content.decode()
        assert "India (IN)" in page and "Canada (CA)" not in page, name
    filtered = client_for(world.curator).get(
        reverse("admin:dossiers_candidate_changelist"), {"market": str(world.india.pk)}
    )
    assert [c.pk for c in filtered.context["cl"].result_list] == [world.candidate.pk]


def test_condition_owner_is_chosen_from_the_market_team(world: World) -> None:
    client = client_for(world.curator)
    url = change_url(world.candidate)
    page = client.get(url)
    data = admin_form_data(page, **{"conditions-0-owner": world.outsider.pk})
    assert client.post(url, data).status_code == 200  # not a choice: the form comes back with the error
    assert GuardrailCondition.objects.get(candidate=world.candidate).owner is None
    data = admin_form_data(page, **{"conditions-0-owner": world.curator2.pk})
    assert client.post(url, data).status_code == 302
    assert GuardrailCondition.objects.get(candidate=world.candidate).owner == world.curator2


def test_prediction_search_is_one_prefix_over_drug_and_disease(world: World) -> None:
    make_drug("Thalidomide", drugbank_id="DB01041")
    now = timezone.now()
    other = Prediction.objects.create(
        market=world.india, drug=make_drug("Aspirin"), disease="Myeloma, multiple", imported_at=now
    )
    client = client_for(world.curator)
    url = reverse("admin:dossiers_prediction_changelist")
    for term, expected in [("lenalid", [world.prediction]), ("db00480", [world.prediction]), ("myeloma", [other])]:
        shown = list(client.get(url, {"q": term}).context["cl"].result_list)
        assert shown == expected, term
    assert 'href="?o=' not in client.get(url).content.decode()  # no sort by score across markets
    assert "o=" in client.get(url, {"market": str(world.india.pk)}).content.decode()
