"""The README's API example runs as written against a live server (token, base URL and id filled in)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import ApiToken
from accounts.services import token_create
from dossiers.models import Candidate
from reviews.models import Review
from tests.reviews.conftest import Personas, to_in_review


def _example() -> str:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's API section has no Python example"
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_readme_example_lists_and_reviews(live_server, people: Personas, candidate: Candidate, capsys) -> None:  # type: ignore[no-untyped-def]
    to_in_review(candidate, people)
    _, raw = token_create(user=people.reviewer1, name="readme", scope=ApiToken.Scope.WRITE)
    code = (
        _example()
        .replace('"http://127.0.0.1:8000/api/v1"', repr(f"{live_server.url}/api/v1"))
        .replace('"Bearer prt_…"', repr(f"Bearer {raw}"))
        .replace("/candidates/42/", f"/candidates/{candidate.pk}/")
    )
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (our own README)
    assert f"{candidate.pk} " in capsys.readouterr().out
    review = Review.objects.get(reviewer=people.reviewer1)
    assert (review.recommendation, review.evidence_level) == ("guardrails", "L2")
