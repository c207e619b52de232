"""NCBI E-utilities for PubMed: esearch (XML), esummary (JSON) and efetch (XML, for abstracts).

Every request carries `tool` and `email` (NCBI's policy for identifying callers) and `api_key` when
NCBI_API_KEY is set, which also raises the default rate limit from 3 to 10 requests per second.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dossiers.sources import transport
from dossiers.sources.errors import SourceError
from dossiers.sources.transport import Payload, need, opt, texts

SOURCE = "pubmed"
# NCBI asks for POST above ~200 ids; we stay under it by batching GETs.
BATCH = 200
# Ids per esearch page (NCBI allows up to 10,000 per request, and retstart + retmax up to 10,000).
ESEARCH_PAGE = 500


@dataclass(frozen=True)
class PubMedSearch:
    """The total hit count PubMed reported and the PMIDs read (the first `retmax`, or all pages read)."""

    count: int
    ids: tuple[str, ...]
    query_translation: str
    url: str


@dataclass(frozen=True)
class ArticleSummary:
    """An esummary record; `pub_date` as PubMed prints it ("2012 Jul 12"), `year` parsed from it."""

    pmid: str
    title: str
    journal: str
    pub_date: str
    year: int | None
    publication_types: tuple[str, ...]
    authors: tuple[str, ...]
    doi: str


@dataclass(frozen=True)
class ArticleAbstract:
    """An efetch record: the abstract with structured sections joined as "LABEL: text" paragraphs."""

    pmid: str
    title: str
    abstract: str
    journal: str
    year: int | None
    publication_types: tuple[str, ...]
    authors: tuple[str, ...]
    doi: str
    trial_ids: tuple[str, ...]


def drug_disease_term(drug: str | Sequence[str], disease: str) -> str:
    """Return the PubMed query for papers about a drug (any of its names) in a disease.

    "(lenalidomide) AND (myeloid leukemia)"; with several names "((lenalidomide) OR (Revlimid)) AND (...)".
    Each name is parenthesised: PubMed reads "all trans retinoic acid OR ATRA" left to right otherwise.
    """
    names = [drug] if isinstance(drug, str) else list(drug)
    names = [n.strip() for n in names if n.strip()]
    either = f"({names[0]})" if len(names) == 1 else "(" + " OR ".join(f"({n})" for n in names) + ")"
    return f"{either} AND ({disease.strip()})"


def _params(**extra: str | int) -> dict[str, str | int]:
    params: dict[str, str | int] = {
        "db": "pubmed",
        "tool": settings.SOURCES_TOOL_NAME,
        "email": settings.SOURCES_CONTACT_EMAIL,
    }
    if settings.NCBI_API_KEY:
        params["api_key"] = settings.NCBI_API_KEY
    params.update(extra)
    return params


def _url(endpoint: str) -> str:
    return f"{settings.NCBI_EUTILS_BASE_URL}/{endpoint}"


def _text(payload: Payload, element: ET.Element, path: str) -> str:
    found = element.find(path)
    if found is None or found.text is None:
        raise payload.malformed(f"missing <{path}>")
    return found.text.strip()


def esearch(*, term: str, retmax: int = 100, retstart: int = 0) -> PubMedSearch:
    """Search PubMed; raise SourceError when NCBI reports an error for the query."""
    payload = transport.get_xml(
        SOURCE, _url("esearch.fcgi"), params=_params(term=term, retmax=retmax, retstart=retstart)
    )
    root = payload.body
    error = root.find("ERROR")
    if error is not None:
        raise SourceError(f"esearch error: {error.text}", source=SOURCE, url=payload.url)
    if root.tag != "eSearchResult":
        raise payload.malformed(f"root element is <{root.tag}>, expected <eSearchResult>")
    count = _text(payload, root, "Count")
    if not count.isdigit():
        raise payload.malformed(f"<Count> is {count!r}, expected a number")
    id_list = root.find("IdList")
    if id_list is None:
        raise payload.malformed("missing <IdList>")
    translation = root.find("QueryTranslation")
    return PubMedSearch(
        count=int(count),
        ids=tuple((e.text or "").strip() for e in id_list.findall("Id")),
        query_translation=(translation.text or "").strip() if translation is not None else "",
        url=payload.url,
    )


def esearch_all(*, term: str, max_ids: int, page_size: int | None = None) -> PubMedSearch:
    """Page esearch with retstart until every PMID PubMed counted is read or `max_ids` are.

    Paging also stops when a page adds no PMID not read before (PubMed listed fewer than it counted): the
    caller compares `len(ids)` with `count` to tell a complete search from a partial one.
    """
    page_size = page_size or ESEARCH_PAGE
    first = esearch(term=term, retmax=min(page_size, max_ids), retstart=0)
    ids = list(dict.fromkeys(first.ids))
    while len(ids) < min(first.count, max_ids):
        page = esearch(term=term, retmax=min(page_size, max_ids - len(ids)), retstart=len(ids))
        known = set(ids)
        new = [i for i in dict.fromkeys(page.ids) if i not in known]
        if not new:
            break
        ids.extend(new)
    return PubMedSearch(
        count=first.count, ids=tuple(ids[:max_ids]), query_translation=first.query_translation, url=first.url
    )


def _batches(ids: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
    for start in range(0, len(unique), BATCH):
        yield unique[start : start + BATCH]


def _year(text: str) -> int | None:
    head = text.strip()[:4]
    return int(head) if head.isdigit() else None


def _authors(payload: Payload, pmid: str, doc: Any) -> tuple[str, ...]:
    """Person authors: objects with `name` (collective names left out), or bare name strings."""
    names = []
    for number, author in enumerate(opt(payload, doc, "authors", list, [])):
        field = f"result.{pmid}.authors[{number}]"
        if isinstance(author, str):
            names.append(author.strip())
        elif isinstance(author, dict):
            if author.get("authtype", "Author") in ("Author", None, ""):
                name = author.get("name")
                if not isinstance(name, str):
                    raise payload.malformed(f"{field}.name is {type(name).__name__}, expected a string")
                names.append(name.strip())
        else:
            raise payload.malformed(f"{field} is {type(author).__name__}, expected a name or an object")
    return tuple(n for n in names if n)


def _summary_doi(payload: Payload, pmid: str, doc: Any) -> str:
    for number, article_id in enumerate(opt(payload, doc, "articleids", list, [])):
        if not isinstance(article_id, dict):
            kind = type(article_id).__name__
            raise payload.malformed(f"result.{pmid}.articleids[{number}] is {kind}, expected an object")
        if article_id.get("idtype") == "doi":
            value = article_id.get("value")
            if not isinstance(value, str):
                raise payload.malformed(f"result.{pmid}.articleids[{number}].value is not a string")
            return value.strip()
    return ""


def _summary(payload: Payload, pmid: str, doc: Any) -> ArticleSummary:
    pub_date = opt(payload, doc, "pubdate", str, "")
    return ArticleSummary(
        pmid=pmid,
        title=need(payload, doc, "title", str),
        journal=opt(payload, doc, "fulljournalname", str, "") or opt(payload, doc, "source", str, ""),
        pub_date=pub_date,
        year=_year(pub_date),
        publication_types=texts(payload, doc, "pubtype"),
        authors=_authors(payload, pmid, doc),
        doi=_summary_doi(payload, pmid, doc),
    )


def esummary(*, ids: Sequence[str]) -> list[ArticleSummary]:
    """Summarise PMIDs in the order PubMed returns them; ids PubMed reports an error for are left out."""
    summaries: list[ArticleSummary] = []
    for batch in _batches(ids):
        payload = transport.get_json(SOURCE, _url("esummary.fcgi"), params=_params(id=",".join(batch), retmode="json"))
        result = need(payload, payload.body, "result", dict)
        for pmid in need(payload, result, "uids", list):
            doc = need(payload, result, str(pmid), dict)
            if "error" in doc:  # withdrawn or unknown PMID: PubMed says so per id
                continue
            summaries.append(_summary(payload, str(pmid), doc))
    return summaries


def _inner_text(element: ET.Element | None) -> str:
    """Text of an element including inline markup such as <i> or <sup>."""
    return "".join(element.itertext()).strip() if element is not None else ""


def _abstract(article: ET.Element) -> str:
    parts = []
    for section in article.findall("Abstract/AbstractText"):
        text = _inner_text(section)
        label = section.get("Label")
        parts.append(f"{label}: {text}" if label else text)
    return "\n\n".join(p for p in parts if p)


def _author(author: ET.Element) -> str:
    collective = author.findtext("CollectiveName")
    if collective:
        return collective.strip()
    return " ".join(filter(None, [author.findtext("LastName"), author.findtext("Initials")]))


def _doi(record: ET.Element, article: ET.Element) -> str:
    for element in [*article.findall("ELocationID"), *record.findall("PubmedData/ArticleIdList/ArticleId")]:
        if "doi" in (element.get("EIdType"), element.get("IdType")) and element.text:
            return element.text.strip()
    return ""


def _article(payload: Payload, record: ET.Element) -> ArticleAbstract:
    citation = record.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    if citation is None or article is None:
        raise payload.malformed("a <PubmedArticle> lacks MedlineCitation/Article")
    year = article.findtext("Journal/JournalIssue/PubDate/Year") or article.findtext(
        "Journal/JournalIssue/PubDate/MedlineDate"
    )
    trials = [
        (n.text or "").strip()
        for bank in article.findall("DataBankList/DataBank")
        if bank.findtext("DataBankName") == "ClinicalTrials.gov"
        for n in bank.findall("AccessionNumberList/AccessionNumber")
    ]
    return ArticleAbstract(
        pmid=_text(payload, citation, "PMID"),
        title=_inner_text(article.find("ArticleTitle")),
        abstract=_abstract(article),
        journal=(article.findtext("Journal/Title") or "").strip(),
        year=_year(year or ""),
        publication_types=tuple((t.text or "").strip() for t in article.findall("PublicationTypeList/PublicationType")),
        authors=tuple(_author(a) for a in article.findall("AuthorList/Author")),
        doi=_doi(record, article),
        trial_ids=tuple(trials),
    )


def _book(payload: Payload, record: ET.Element) -> ArticleAbstract:
    """A book chapter (PubmedBookArticle): its PMID, title and abstract only."""
    document = record.find("BookDocument")
    if document is None:
        raise payload.malformed("a <PubmedBookArticle> lacks BookDocument")
    return ArticleAbstract(
        pmid=_text(payload, document, "PMID"),
        title=_inner_text(document.find("ArticleTitle")) or _inner_text(document.find("Book/BookTitle")),
        abstract=_abstract(document),
        journal="",
        year=_year(document.findtext("Book/PubDate/Year") or ""),
        publication_types=tuple((t.text or "").strip() for t in document.findall("PublicationType")),
        authors=tuple(_author(a) for a in document.findall("AuthorList/Author")),
        doi="",
        trial_ids=(),
    )


def efetch(*, ids: Sequence[str]) -> list[ArticleAbstract]:
    """Fetch full PubMed records (XML) for abstracts: articles, and book chapters (PMID, title, abstract)."""
    articles: list[ArticleAbstract] = []
    for batch in _batches(ids):
        payload = transport.get_xml(
            SOURCE, _url("efetch.fcgi"), params=_params(id=",".join(batch), retmode="xml", rettype="abstract")
        )
        if payload.body.tag != "PubmedArticleSet":
            raise payload.malformed(f"root element is <{payload.body.tag}>, expected <PubmedArticleSet>")
        articles.extend(_article(payload, record) for record in payload.body.findall("PubmedArticle"))
        articles.extend(_book(payload, record) for record in payload.body.findall("PubmedBookArticle"))
    return articles
