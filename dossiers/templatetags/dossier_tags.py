"""Template filters for dossier pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from dossiers.models import Candidate
from dossiers.report import format_count, markdown_html

register = template.Library()


@register.filter
def trials_found(candidate: Candidate) -> str:
    """The reported trial total; a search page's cap reads "≥ 50"."""
    return format_count(candidate.trials_reported_total, candidate.trials_total_capped)


@register.filter
def publications_found(candidate: Candidate) -> str:
    return format_count(candidate.publications_reported_total, candidate.publications_total_capped)


@register.filter
def percent(score: float | None) -> str:
    """A 0–1 model score as the reports print it, e.g. 99.49%."""
    return "—" if score is None else f"{score * 100:.2f}%"


@register.filter
def prose(text: str) -> SafeString:
    """Stored report prose (paragraphs, lists, a licence table) as sanitised HTML."""
    return mark_safe(markdown_html(text or ""))  # noqa: S308 - markdown_html escapes raw HTML and cleans with nh3
