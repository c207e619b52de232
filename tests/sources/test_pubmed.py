"""PubMed E-utilities client against the real esearch/efetch recordings and a hand-made esummary."""

from collections.abc import Mapping

import pytest

from dossiers.sources import pubmed
from dossiers.sources.errors import MalformedResponse, SourceError
from tests.fakeapi import EUTILS, FakeApi, Reply, file_reply, handmade, json_reply, raw_reply, recorded

ESEARCH = f"{EUTILS}/esearch.fcgi"
ESUMMARY = f"{EUTILS}/esummary.fcgi"
EFETCH = f"{EUTILS}/efetch.fcgi"


def test_esearch_parses_the_real_recording(fakeapi: FakeApi) -> None:
    fakeapi.route(ESEARCH, file_reply(recorded("pubmed-esearch.xml")))

    result = pubmed.esearch(term="biopython", retmax=20)

    assert result.count == 63
    assert len(result.ids) == 20
    assert result.ids[:3] == ("41282813", "41148224", "41011574")
    assert result.ids[-1] == "37810457"
    assert result.query_translation == '"biopython"[All Fields]'


def test_esearch_drug_and_disease(fakeapi: FakeApi) -> None:
    fakeapi.route(ESEARCH, file_reply(handmade("pubmed-esearch-lenalidomide-aml.handmade.xml")))

    result = pubmed.esearch(term=pubmed.drug_disease_term("lenalidomide", "myeloid leukemia"), retmax=5)

    assert (result.count, result.ids) == (412, ("39881283", "37435080", "37259567", "35512188", "30271212"))
    (request,) = fakeapi.seen(ESEARCH)
    assert request.params["term"] == "(lenalidomide) AND (myeloid leukemia)"
    assert (request.params["db"], request.params["retmax"]) == ("pubmed", "5")


def test_tool_and_email_are_sent_and_no_api_key_without_one(fakeapi: FakeApi) -> None:
    fakeapi.route(ESEARCH, file_reply(recorded("pubmed-esearch.xml")))

    pubmed.esearch(term="biopython")

    (request,) = fakeapi.seen(ESEARCH)
    assert request.params["tool"] == "portal-tests"
    assert request.params["email"] == "evidence@portal.test"
    assert "api_key" not in request.params


def test_api_key_is_sent_when_configured_and_kept_out_of_errors(fakeapi: FakeApi, settings) -> None:
    settings.NCBI_API_KEY = "k3y-for-tests"
    fakeapi.route(ESEARCH, file_reply(recorded("pubmed-esearch.xml")))
    fakeapi.route(EFETCH, raw_reply("<PubmedArticleSet><PubmedArticle>", content_type="text/xml"))

    pubmed.esearch(term="biopython")
    with pytest.raises(MalformedResponse) as caught:
        pubmed.efetch(ids=["22663011"])

    assert [r.params["api_key"] for r in fakeapi.seen()] == ["k3y-for-tests", "k3y-for-tests"]
    assert all(r.params["tool"] == "portal-tests" for r in fakeapi.seen())
    assert "k3y-for-tests" not in str(caught.value)
    assert "api_key=***" in caught.value.url


def test_esearch_empty_result(fakeapi: FakeApi) -> None:
    fakeapi.route(ESEARCH, file_reply(handmade("pubmed-esearch-empty.handmade.xml")))

    result = pubmed.esearch(term="(zzqxlenalidomide) AND (myeloid leukemia)")

    assert (result.count, result.ids) == (0, ())


def test_esearch_error_element_is_a_source_error(fakeapi: FakeApi) -> None:
    fakeapi.route(
        ESEARCH, raw_reply("<eSearchResult><ERROR>Empty term and query_key - nothing todo</ERROR></eSearchResult>")
    )

    with pytest.raises(SourceError, match="esearch error: Empty term"):
        pubmed.esearch(term="")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<eSearchResult><Count>3</Count><IdList><Id>1</Id>", "not valid XML"),
        ("<eSearchResult><IdList/></eSearchResult>", "missing <Count>"),
        ("<eSearchResult><Count>3</Count></eSearchResult>", "missing <IdList>"),
        ("<eSearchResult><Count>many</Count><IdList/></eSearchResult>", "<Count> is 'many'"),
        ("<html><body>Service unavailable</body></html>", "root element is <html>"),
    ],
)
def test_esearch_malformed_xml(fakeapi: FakeApi, body: str, message: str) -> None:
    fakeapi.route(ESEARCH, raw_reply(body, content_type="text/xml"))

    with pytest.raises(MalformedResponse) as caught:
        pubmed.esearch(term="x")

    assert message in caught.value.message
    assert caught.value.source == "pubmed"


def test_esummary_parses_title_journal_date_types_authors_and_doi(fakeapi: FakeApi) -> None:
    fakeapi.route(ESUMMARY, file_reply(handmade("pubmed-esummary-22663011.handmade.json")))

    (summary,) = pubmed.esummary(ids=["22663011", "99999999"])

    assert summary == pubmed.ArticleSummary(
        pmid="22663011",
        title="Improved survival with MEK inhibition in BRAF-mutated melanoma.",
        journal="The New England journal of medicine",
        pub_date="2012 Jul 12",
        year=2012,
        publication_types=(
            "Clinical Trial, Phase III",
            "Comparative Study",
            "Journal Article",
            "Multicenter Study",
            "Randomized Controlled Trial",
        ),
        authors=("Flaherty KT", "Robert C", "Hersey P"),
        doi="10.1056/NEJMoa1203421",
    )
    (request,) = fakeapi.seen(ESUMMARY)
    assert request.params["id"] == "22663011,99999999"
    assert request.params["retmode"] == "json"


def _summary_doc(**fields: object) -> dict:
    return {"result": {"uids": ["1"], "1": {"uid": "1", "title": "T", "pubdate": "2020", **fields}}}


def test_esummary_reads_authors_given_as_bare_names(fakeapi: FakeApi) -> None:
    fakeapi.route(ESUMMARY, json_reply(_summary_doc(authors=["Smith J", "Doe A"], pubtype="Review")))

    (summary,) = pubmed.esummary(ids=["1"])

    assert (summary.authors, summary.publication_types) == (("Smith J", "Doe A"), ("Review",))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"authors": [42]}, "result.1.authors[0] is int, expected a name or an object"),
        ({"authors": [{"authtype": "Author"}]}, "result.1.authors[0].name is NoneType"),
        ({"articleids": ["doi:10.1/x"]}, "result.1.articleids[0] is str, expected an object"),
        ({"pubtype": [{"name": "Review"}]}, "pubtype[0] is dict, expected a string"),
        ({"authors": "Smith J"}, "'authors' is str, expected list"),
    ],
)
def test_esummary_odd_shapes_are_malformed_naming_the_field(fakeapi: FakeApi, fields: dict, message: str) -> None:
    fakeapi.route(ESUMMARY, json_reply(_summary_doc(**fields)))

    with pytest.raises(MalformedResponse) as caught:
        pubmed.esummary(ids=["1"])

    assert message in caught.value.message


def test_esummary_partial_response_is_malformed(fakeapi: FakeApi) -> None:
    fakeapi.route(ESUMMARY, raw_reply('{"header": {}, "result": {"uids": ["22663011"]}}'))

    with pytest.raises(MalformedResponse, match="missing '22663011'"):
        pubmed.esummary(ids=["22663011"])


def test_esummary_without_ids_sends_nothing(fakeapi: FakeApi) -> None:
    assert pubmed.esummary(ids=[]) == []
    assert fakeapi.seen() == []


def test_efetch_parses_the_real_recording(fakeapi: FakeApi) -> None:
    fakeapi.route(EFETCH, file_reply(recorded("pubmed-efetch.xml")))

    (article,) = pubmed.efetch(ids=["22663011"])

    assert article.pmid == "22663011"
    assert article.title == "Improved survival with MEK inhibition in BRAF-mutated melanoma."
    assert article.journal == "The New England journal of medicine"
    assert article.year == 2012
    assert article.doi == "10.1056/NEJMoa1203421"
    assert article.trial_ids == ("NCT01245062",)
    assert article.authors[:3] == ("Flaherty KT", "Robert C", "Hersey P")
    assert "Randomized Controlled Trial" in article.publication_types
    sections = article.abstract.split("\n\n")
    assert [s.split(":")[0] for s in sections] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert sections[0].startswith("BACKGROUND: Activating mutations in serine-threonine protein kinase B-RAF")
    assert "(hazard ratio for disease progression or death in the trametinib group, 0.45;" in sections[2]
    assert "P<0.001" in sections[2]  # entity decoded
    (request,) = fakeapi.seen(EFETCH)
    assert (request.params["id"], request.params["retmode"]) == ("22663011", "xml")


def test_efetch_record_without_article_is_malformed(fakeapi: FakeApi) -> None:
    fakeapi.route(
        EFETCH,
        raw_reply("<PubmedArticleSet><PubmedArticle><PubmedData/></PubmedArticle></PubmedArticleSet>"),
    )

    with pytest.raises(MalformedResponse, match="lacks MedlineCitation/Article"):
        pubmed.efetch(ids=["1"])


def test_ids_are_batched_and_deduplicated(fakeapi: FakeApi, settings) -> None:
    fakeapi.route(EFETCH, raw_reply("<PubmedArticleSet/>", content_type="text/xml"))

    ids = [str(n) for n in range(1, 251)] + ["1", "2"]
    assert pubmed.efetch(ids=ids) == []

    first, second = fakeapi.seen(EFETCH)
    assert len(first.params["id"].split(",")) == 200
    assert second.params["id"].split(",") == [str(n) for n in range(201, 251)]


def test_esearch_all_pages_with_retstart_up_to_the_cap(fakeapi: FakeApi) -> None:
    ids = [str(n) for n in range(1, 8)]

    def page(params: Mapping[str, str]) -> Reply:
        start, size = int(params["retstart"]), int(params["retmax"])
        found = "".join(f"<Id>{i}</Id>" for i in ids[start : start + size])
        return raw_reply(
            f"<eSearchResult><Count>7</Count><IdList>{found}</IdList></eSearchResult>", content_type="text/xml"
        )

    fakeapi.route(ESEARCH, page)

    assert pubmed.esearch_all(term="x", max_ids=100, page_size=3).ids == tuple(ids)
    assert [r.params["retstart"] for r in fakeapi.seen(ESEARCH)] == ["0", "3", "6"]
    capped = pubmed.esearch_all(term="x", max_ids=5, page_size=3)
    assert (capped.count, capped.ids) == (7, ("1", "2", "3", "4", "5"))
    assert [r.params["retmax"] for r in fakeapi.seen(ESEARCH)[3:]] == ["3", "2"]


def test_efetch_reads_book_chapters_too(fakeapi: FakeApi) -> None:
    book = (
        "<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID>20301295</PMID>"
        "<ArticleTitle>Lenalidomide</ArticleTitle><Abstract><AbstractText>A drug monograph.</AbstractText>"
        "</Abstract></BookDocument></PubmedBookArticle></PubmedArticleSet>"
    )
    fakeapi.route(EFETCH, raw_reply(book, content_type="text/xml"))

    (chapter,) = pubmed.efetch(ids=["20301295"])

    assert (chapter.pmid, chapter.title, chapter.abstract) == ("20301295", "Lenalidomide", "A drug monograph.")


def test_drug_disease_term_with_several_names_parenthesises_each() -> None:
    assert pubmed.drug_disease_term(["tretinoin", "all trans retinoic acid"], "APL") == (
        "((tretinoin) OR (all trans retinoic acid)) AND (APL)"
    )
    assert pubmed.drug_disease_term(["lenalidomide"], "AML") == "(lenalidomide) AND (AML)"
