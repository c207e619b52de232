"""ClinicalTrials.gov API v2: search studies by condition and intervention, fetch one study by NCT id.

A trial counts as stopped for safety (`TrialRecord.stopped_for_safety`) when its overall status is
TERMINATED, SUSPENDED or WITHDRAWN and its "why stopped" text names a safety reason (`SAFETY_WORDS`:
safety, toxicity/toxic, adverse event/effect/reaction, side effect, death/died/fatal/mortality, harm,
"risk outweighs"/"unacceptable risk") that is not negated by "not", "no", "non", "unrelated",
"without" or "nor" among the three words before it ("not related to safety" is not a safety stop).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dossiers.sources import transport
from dossiers.sources.transport import Payload, need, objects, opt, texts

SOURCE = "clinicaltrials"
# The fields we read; the API answers 400 to an unknown field name, so keep these to documented pieces.
FIELDS = (
    "NCTId,BriefTitle,OfficialTitle,OverallStatus,WhyStopped,Phase,StudyType,DesignAllocation,EnrollmentCount,"
    "StartDate,CompletionDate,Condition,InterventionName,BriefSummary,HasResults,LastUpdatePostDate"
)
STOPPED_STATUSES = frozenset({"TERMINATED", "SUSPENDED", "WITHDRAWN"})
SAFETY_WORDS = re.compile(
    r"\b(safety|toxicit(?:y|ies)|toxic|adverse (?:events?|effects?|reactions?)|side[- ]effects?|deaths?|died|"
    r"fatal(?:ity|ities)?|mortality|harm(?:ful)?|risks? outweigh\w*|unacceptable risks?)\b",
    re.IGNORECASE,
)
NEGATIONS = frozenset({"not", "no", "non", "unrelated", "without", "nor"})


def is_safety_stop(overall_status: str, why_stopped: str) -> bool:
    """Apply the documented keyword rule (module docstring) to a status and its why-stopped text."""
    if overall_status.upper() not in STOPPED_STATUSES:
        return False
    for match in SAFETY_WORDS.finditer(why_stopped):
        before = re.findall(r"[a-z]+", why_stopped[: match.start()].lower())[-3:]
        if not NEGATIONS.intersection(before):
            return True
    return False


@dataclass(frozen=True)
class TrialRecord:
    """One study as the registry reports it; dates are ISO and may be partial ("2026-12")."""

    nct_id: str
    brief_title: str
    official_title: str
    overall_status: str
    why_stopped: str
    phases: tuple[str, ...]
    study_type: str
    allocation: str
    enrollment: int | None
    start_date: str
    completion_date: str
    conditions: tuple[str, ...]
    interventions: tuple[str, ...]
    brief_summary: str
    has_results: bool | None
    last_update_date: str

    @property
    def stopped_for_safety(self) -> bool:
        return is_safety_stop(self.overall_status, self.why_stopped)


@dataclass(frozen=True)
class TrialPage:
    """One page of a search; `total_count` is reported on the first page only."""

    trials: tuple[TrialRecord, ...]
    total_count: int | None
    next_page_token: str | None


@dataclass(frozen=True)
class TrialSearch:
    """The trials of a search, the total the registry reported and the URL of the first page.

    `complete` is False when the page cap (CLINICALTRIALS_MAX_PAGES) stopped the paging with pages left.
    """

    trials: tuple[TrialRecord, ...]
    total_count: int | None
    url: str
    complete: bool = True
    pages: int = 1


def parse_study(payload: Payload, study: Any) -> TrialRecord:
    """Build a TrialRecord from one v2 study object; raise MalformedResponse if the identity is missing."""
    p = need(payload, study, "protocolSection", dict)
    interventions = objects(payload, p, "armsInterventionsModule.interventions")
    return TrialRecord(
        nct_id=need(payload, p, "identificationModule.nctId", str),
        brief_title=opt(payload, p, "identificationModule.briefTitle", str, ""),
        official_title=opt(payload, p, "identificationModule.officialTitle", str, ""),
        overall_status=need(payload, p, "statusModule.overallStatus", str),
        why_stopped=opt(payload, p, "statusModule.whyStopped", str, ""),
        phases=texts(payload, p, "designModule.phases"),
        study_type=opt(payload, p, "designModule.studyType", str, ""),
        allocation=opt(payload, p, "designModule.designInfo.allocation", str, ""),
        enrollment=_count(payload, p, "designModule.enrollmentInfo.count"),
        start_date=opt(payload, p, "statusModule.startDateStruct.date", str, ""),
        completion_date=opt(payload, p, "statusModule.completionDateStruct.date", str, ""),
        conditions=texts(payload, p, "conditionsModule.conditions"),
        interventions=tuple(need(payload, i, "name", str) for i in interventions),
        brief_summary=opt(payload, p, "descriptionModule.briefSummary", str, ""),
        has_results=opt(payload, study, "hasResults", bool),
        last_update_date=opt(payload, p, "statusModule.lastUpdatePostDateStruct.date", str, ""),
    )


def intervention_query(names: Sequence[str]) -> str:
    """The `query.intr` expression for any of a drug's names: "lenalidomide OR Revlimid".

    Names of several words are parenthesised so that OR joins whole names (Essie syntax).
    """
    clean = [n.strip() for n in names if n.strip()]
    return " OR ".join(f"({n})" if len(clean) > 1 and " " in n else n for n in clean)


def _count(payload: Payload, obj: Any, path: str) -> int | None:
    """A whole number the registry may write as 88 or 88.0; negative or fractional is malformed."""
    value = opt(payload, obj, path, (int, float))
    if value is None:
        return None
    if isinstance(value, bool) or value < 0 or value != int(value):
        raise payload.malformed(f"{path!r} is {value!r}, expected a whole number")
    return int(value)


def _page(payload: Payload) -> TrialPage:
    studies = need(payload, payload.body, "studies", list)
    token = opt(payload, payload.body, "nextPageToken", str)
    return TrialPage(
        trials=tuple(parse_study(payload, study) for study in studies),
        total_count=opt(payload, payload.body, "totalCount", int),
        next_page_token=token or None,
    )


def iter_pages(
    *, condition: str, intervention: str = "", page_size: int = 100, max_pages: int | None = None
) -> Iterator[TrialPage]:
    """Yield the pages of a search, following nextPageToken, at most `max_pages` (default: the setting).

    A repeated token is malformed. The last page yielded still has its `next_page_token` when the cap
    stopped the paging.
    """
    params: dict[str, str | int] = {"query.cond": condition, "pageSize": page_size, "countTotal": "true"}
    params["fields"] = FIELDS
    if intervention:
        params["query.intr"] = intervention
    seen: set[str] = set()
    for _ in range(max_pages or settings.CLINICALTRIALS_MAX_PAGES):
        payload = transport.get_json(SOURCE, f"{settings.CLINICALTRIALS_BASE_URL}/studies", params=params)
        page = _page(payload)
        yield page
        if page.next_page_token is None:
            return
        if page.next_page_token in seen:
            raise payload.malformed(f"nextPageToken {page.next_page_token!r} repeats an earlier page")
        seen.add(page.next_page_token)
        params["pageToken"] = page.next_page_token


def search_studies(
    *, condition: str, intervention: str = "", page_size: int = 100, max_pages: int | None = None
) -> TrialSearch:
    """Return the studies matching condition and intervention, up to `max_pages` pages (`complete` says if all)."""
    trials: list[TrialRecord] = []
    total: int | None = None
    complete, pages = True, 0
    for page in iter_pages(condition=condition, intervention=intervention, page_size=page_size, max_pages=max_pages):
        if pages == 0:
            total = page.total_count
        pages += 1
        trials.extend(page.trials)
        complete = page.next_page_token is None
    url = transport.query_url(
        f"{settings.CLINICALTRIALS_BASE_URL}/studies",
        {"query.cond": condition, "query.intr": intervention, "pageSize": page_size},
    )
    return TrialSearch(trials=tuple(trials), total_count=total, url=url, complete=complete, pages=pages)


def get_study(nct_id: str) -> TrialRecord:
    """Return one study; raise NotFound for an unknown NCT id."""
    if not re.fullmatch(r"NCT\d{8}", nct_id):
        raise ValueError(f"{nct_id!r} is not an NCT id (NCT followed by 8 digits)")
    payload = transport.get_json(
        SOURCE, f"{settings.CLINICALTRIALS_BASE_URL}/studies/{nct_id}", params={"fields": FIELDS}
    )
    return parse_study(payload, payload.body)
