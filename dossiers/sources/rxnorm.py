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


def normalize(*, name: str) -> str | None:
    """Return the RxCUI for `name`: the exact match, else the rank-1 approximate match, else None."""
    exact = rxcui_by_name(name=name)
    if exact:
        return exact[0]
    best = approximate_term(term=name, max_entries=1)
    return best[0].rxcui if best else None
