"""RxNav (RxNorm): RxCUI by name and approximate match, to normalise drug names before searching."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from dossiers.sources import transport
from dossiers.sources.transport import need, objects, opt, texts

SOURCE = "rxnav"


@dataclass(frozen=True)
class ApproximateMatch:
    """One approximateTerm candidate; rank 1 is the best, a higher score the closer match."""

    rxcui: str
    score: float
    rank: int
    name: str
    source: str


def rxcui_by_name(*, name: str) -> tuple[str, ...]:
    """Return the RxCUIs of an exact or normalised name match (search=2), () when RxNorm has none."""
    payload = transport.get_json(
        SOURCE, f"{settings.RXNAV_BASE_URL}/REST/rxcui.json", params={"name": name.strip(), "search": 2}
    )
    group = need(payload, payload.body, "idGroup", dict)
    return texts(payload, group, "rxnormId")


def approximate_term(*, term: str, max_entries: int = 5) -> list[ApproximateMatch]:
    """Return RxNorm's closest concepts to a possibly misspelt term, best first."""
    payload = transport.get_json(
        SOURCE,
        f"{settings.RXNAV_BASE_URL}/REST/approximateTerm.json",
        params={"term": term.strip(), "maxEntries": max_entries},
    )
    group = need(payload, payload.body, "approximateGroup", dict)
    matches = []
    for candidate in objects(payload, group, "candidate"):
        score, rank = need(payload, candidate, "score", (str, int, float)), need(payload, candidate, "rank", (str, int))
        try:
            matches.append(
                ApproximateMatch(
                    rxcui=str(need(payload, candidate, "rxcui", (str, int))),
                    score=float(score),
                    rank=int(rank),
                    name=opt(payload, candidate, "name", str, ""),
                    source=opt(payload, candidate, "source", str, ""),
                )
            )
        except ValueError:
            raise payload.malformed(f"candidate score {score!r} or rank {rank!r} is not a number") from None
    return sorted(matches, key=lambda m: m.rank)


@dataclass(frozen=True)
class Normalised:
    """RxNorm's concept for a drug name and the name to search by: the name itself when RxNorm knows it
    (exact or normalised match), else the approximate match's name ("lenalidomid" → "lenalidomide")."""

    rxcui: str
    name: str
    exact: bool


def normalise(*, name: str) -> Normalised | None:
    """Return RxNorm's concept for `name`: the exact match, else the rank-1 approximate match, else None.

    Of the rank-1 candidates, one from RxNorm itself with a name is preferred (other sources may spell it
    in capitals, or give no name); without any name the given one is kept.
    """
    exact = rxcui_by_name(name=name)
    if exact:
        return Normalised(rxcui=exact[0], name=name.strip(), exact=True)
    matches = approximate_term(term=name, max_entries=1)
    if not matches:
        return None
    best = [m for m in matches if m.rank == matches[0].rank]
    named = [m for m in best if m.name and m.source == "RXNORM"] or [m for m in best if m.name] or best
    return Normalised(rxcui=named[0].rxcui, name=named[0].name or name.strip(), exact=False)


def normalize(*, name: str) -> str | None:
    """Return the RxCUI for `name` (see `normalise`), else None."""
    found = normalise(name=name)
    return found.rxcui if found else None
