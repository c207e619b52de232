"""openFDA drug labels: boxed warning, contraindications, warnings and cautions, drug interactions.

openFDA answers 404 when a search matches nothing; that is an empty result here, not an error.
Older (non-PLR) labels have `warnings` instead of `warnings_and_cautions`; we fall back to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dossiers.sources import transport
from dossiers.sources.errors import NotFound
from dossiers.sources.transport import Payload, need, opt, texts

SOURCE = "openfda"


@dataclass(frozen=True)
class DrugLabel:
    """One structured product label; text sections are joined paragraphs, "" when the label has none."""

    set_id: str
    effective_time: str
    brand_names: tuple[str, ...]
    generic_names: tuple[str, ...]
    boxed_warning: str
    contraindications: str
    warnings_and_cautions: str
    drug_interactions: str


@dataclass(frozen=True)
class LabelSearch:
    """Labels matching a name, newest first, with the total openFDA reported."""

    labels: tuple[DrugLabel, ...]
    total: int
    url: str


def _section(payload: Payload, result: Any, field: str) -> str:
    return "\n\n".join(texts(payload, result, field))


def parse_label(payload: Payload, result: Any) -> DrugLabel:
    """Build a DrugLabel from one openFDA `results` item; raise MalformedResponse without a set_id."""
    return DrugLabel(
        set_id=need(payload, result, "set_id", str),
        effective_time=opt(payload, result, "effective_time", str, ""),
        brand_names=texts(payload, result, "openfda.brand_name"),
        generic_names=texts(payload, result, "openfda.generic_name"),
        boxed_warning=_section(payload, result, "boxed_warning"),
        contraindications=_section(payload, result, "contraindications"),
        warnings_and_cautions=_section(payload, result, "warnings_and_cautions")
        or _section(payload, result, "warnings"),
        drug_interactions=_section(payload, result, "drug_interactions"),
    )


def search_labels(*, name: str, limit: int = 5) -> LabelSearch:
    """Return labels whose generic or brand name is `name`, newest effective time first."""
    clean = name.replace('"', "").strip()
    if not clean:
        raise ValueError("a drug name is required")
    params: dict[str, str | int] = {
        "search": f'openfda.generic_name:"{clean}" OR openfda.brand_name:"{clean}"',
        "limit": limit,
        "sort": "effective_time:desc",
    }
    if settings.OPENFDA_API_KEY:
        params["api_key"] = settings.OPENFDA_API_KEY
    url = f"{settings.OPENFDA_BASE_URL}/drug/label.json"
    try:
        payload = transport.get_json(SOURCE, url, params=params)
    except NotFound:
        return LabelSearch(labels=(), total=0, url=transport.query_url(url, params))
    results = need(payload, payload.body, "results", list)
    return LabelSearch(
        labels=tuple(parse_label(payload, r) for r in results),
        total=need(payload, payload.body, "meta.results.total", int),
        url=payload.url,
    )


def find_label(*, name: str) -> DrugLabel | None:
    """Return the label named exactly `name` (brand or generic, any case), else the newest match, else None."""
    labels = search_labels(name=name).labels
    wanted = name.strip().casefold()
    for label in labels:
        if wanted in {n.casefold() for n in (*label.brand_names, *label.generic_names)}:
            return label
    return labels[0] if labels else None
