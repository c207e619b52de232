"""The fake APIs answering for the seed candidate (lenalidomide → myeloid leukemia, India).

Trials, the label and RxNorm come from the hand-made files of tests/fixtures/external/. The PubMed
answers are built here (hand-made, in the documented E-utilities formats): esearch finds the seed's
five PMIDs of `pubmed-esearch-lenalidomide-aml.handmade.xml` plus two PMIDs the seed lacks
(**40000001** and **40000002 are invented**), esummary and efetch describe those seven.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from tests.fakeapi import (
    APPROXIMATE,
    CTGOV,
    EUTILS,
    OPENFDA_LABEL,
    RXCUI,
    Answer,
    FakeApi,
    Reply,
    file_reply,
    handmade,
    json_reply,
    raw_reply,
)

PAGE2_TOKEN = "NF0g5JGBlPMuwQY"
SEED_PMIDS = ["39881283", "37435080", "37259567", "35512188", "30271212"]
NEW_PMIDS = ["40000001", "40000002"]
PAPERS = {
    "39881283": ("KDM5C stabilizes CRBN in acute myeloid leukemia", ["Journal Article"], 2025),
    "37435080": ("Lenalidomide maintenance after transplant in AML", ["Clinical Trial, Phase II"], 2023),
    "37259567": ("Lenalidomide in myeloid neoplasms: a review", ["Review"], 2023),
    "35512188": ("Therapy-related myeloid neoplasms after lenalidomide", ["Journal Article"], 2022),
    "30271212": ("Lenalidomide in MDS and AML: a meta-analysis", ["Meta-Analysis"], 2018),
    "40000001": (
        "Lenalidomide plus azacitidine in older AML: a randomized trial",
        ["Randomized Controlled Trial"],
        2026,
    ),
    "40000002": ("A case of lenalidomide-associated AML", ["Case Reports"], 2026),
}


def esearch_xml(pmids: list[str], count: int | None = None, retstart: int = 0) -> str:
    ids = "".join(f"<Id>{p}</Id>" for p in pmids)
    total = len(pmids) if count is None else count
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        f"<eSearchResult><Count>{total}</Count><RetMax>{len(pmids)}</RetMax><RetStart>{retstart}</RetStart>"
        f"<IdList>{ids}</IdList><QueryTranslation>lenalidomide AND myeloid leukemia</QueryTranslation></eSearchResult>"
    )


def paged_esearch(pmids: list[str], *, count: int | None = None) -> Answer:
    """esearch over `pmids` honouring retstart and retmax, reporting `count` hits (default: all of them)."""

    def answer(params: Mapping[str, str]) -> Reply:
        start, size = int(params.get("retstart", 0)), int(params.get("retmax", 20))
        page = pmids[start : start + size]
        return raw_reply(esearch_xml(page, len(pmids) if count is None else count, start), content_type="text/xml")

    return answer


def paged_esummary(params: Mapping[str, str]) -> Reply:
    """esummary of whatever ids were asked for."""
    return json_reply(esummary_json(params["id"].split(",")))


def paged_efetch(params: Mapping[str, str]) -> Reply:
    """efetch of whatever ids were asked for."""
    return raw_reply(efetch_xml(params["id"].split(",")), content_type="text/xml")


def esummary_json(pmids: list[str]) -> dict:
    result: dict = {"uids": pmids}
    for pmid in pmids:
        title, types, year = PAPERS.get(pmid, (f"Paper {pmid}", ["Journal Article"], 2024))
        result[pmid] = {
            "uid": pmid,
            "pubdate": f"{year} Jan 15",
            "source": "Blood",
            "fulljournalname": "Blood",
            "title": title,
            "pubtype": types,
            "authors": [{"name": "Doe J", "authtype": "Author"}],
            "articleids": [{"idtype": "doi", "value": f"10.1000/{pmid}"}],
        }
    return {"header": {"type": "esummary", "version": "0.3"}, "result": result}


def efetch_xml(pmids: list[str]) -> str:
    articles = "".join(
        f"<PubmedArticle><MedlineCitation><PMID>{p}</PMID><Article><Journal><Title>Blood</Title>"
        f"<JournalIssue><PubDate><Year>{PAPERS.get(p, ('', [], 2024))[2]}</Year></PubDate></JournalIssue></Journal>"
        f"<ArticleTitle>{escape(PAPERS.get(p, (f'Paper {p}',))[0])}</ArticleTitle>"
        f"<Abstract><AbstractText>Abstract of {p}.</AbstractText></Abstract></Article></MedlineCitation>"
        "</PubmedArticle>"
        for p in pmids
    )
    return f'<?xml version="1.0" ?>\n<PubmedArticleSet>{articles}</PubmedArticleSet>'


def route_seed(fake: FakeApi, *, pmids: list[str] | None = None, delay: float = 0.0) -> None:
    """Answer every source for the seed candidate and its drug, each answer `delay` seconds late."""
    pmids = SEED_PMIDS + NEW_PMIDS if pmids is None else pmids
    if delay:
        fake = _Delayed(fake, delay)  # type: ignore[assignment]
    fake.route(CTGOV, file_reply(handmade("ctgov-v2-studies-lenalidomide-aml-page1.handmade.json")))
    fake.route(
        CTGOV,
        file_reply(handmade("ctgov-v2-studies-lenalidomide-aml-page2.handmade.json")),
        query={"pageToken": PAGE2_TOKEN},
    )
    fake.route(f"{EUTILS}/esearch.fcgi", raw_reply(esearch_xml(pmids), content_type="text/xml"))
    fake.route(f"{EUTILS}/esummary.fcgi", json_reply(esummary_json(pmids)))
    fake.route(f"{EUTILS}/efetch.fcgi", raw_reply(efetch_xml(pmids), content_type="text/xml"))
    fake.route(OPENFDA_LABEL, file_reply(handmade("openfda-label-lenalidomide.handmade.json")))
    fake.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))
    fake.route(APPROXIMATE, file_reply(handmade("rxnav-approximateTerm-lenalidomid.handmade.json")))


class _Delayed:
    """A FakeApi whose routes answer late."""

    def __init__(self, fake: FakeApi, delay: float) -> None:
        self.fake, self.delay = fake, delay

    def route(self, path: str, *replies: Reply, query: Any = None) -> None:
        self.fake.route(path, *(dataclasses.replace(r, delay=self.delay) for r in replies), query=query)
