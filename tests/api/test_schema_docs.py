"""The OpenAPI document has examples everywhere, and the docs pages work offline (bundled assets only)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from rest_framework.test import APIClient

from tests.reviews.conftest import Personas

METHODS = ("get", "post", "put", "patch", "delete")
DOCS_PAGES = ["/api/v1/docs/", "/api/v1/redoc/"]


@pytest.fixture
def schema(people: Personas) -> dict[str, Any]:
    client = APIClient()
    client.force_login(people.viewer)
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _has_examples(content: dict[str, Any]) -> bool:
    return any(media.get("examples") or "example" in media for media in content.values())


def test_every_operation_has_request_and_response_examples(schema: dict[str, Any]) -> None:
    missing = []
    for label, operation in _operations(schema):
        body = operation.get("requestBody")
        if body and not _has_examples(body["content"]):
            missing.append(f"{label}: request body")
        successes = [code for code in operation["responses"] if code.startswith("2")]
        assert successes, f"{label} documents no success response"
        for code in successes:
            content = operation["responses"][code].get("content")
            if content and not _has_examples(content):
                missing.append(f"{label}: {code} response")
    assert missing == []


def test_the_upload_and_refresh_examples_are_on_their_202(schema: dict[str, Any]) -> None:
    upload = schema["paths"]["/api/v1/imports/"]["post"]
    assert _has_examples(upload["requestBody"]["content"])
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    for path in ("/api/v1/imports/", "/api/v1/candidates/{id}/refresh/"):
        responses = schema["paths"][path]["post"]["responses"]
        assert _has_examples(responses["202"]["content"]), path
        assert "200" not in responses, path


def test_error_examples_use_the_error_shape(schema: dict[str, Any]) -> None:
    for label, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                for example in response["content"]["application/json"]["examples"].values():
                    assert set(example["value"]) == {"detail", "code", "errors"}, (label, code)


# ---------------------------------------------------------------- docs pages


def _referenced(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_load_their_bundled_assets(people: Personas, path: str) -> None:
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        client = APIClient()  # a new client builds its middleware under these settings
        client.force_login(people.viewer)
        page = client.get(path)
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        html = page.content.decode()
        assets = [url for url in _referenced(html) if url.startswith("/static/")]
        assert any("drf_spectacular_sidecar" in url for url in assets)
        for url in assets:
            assert finders.find(url.removeprefix("/static/")), url
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"".join(response.streaming_content), url  # type: ignore[attr-defined]
        assert client.get("/api/v1/schema/").status_code == 200  # what the page then loads


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_reference_no_other_host(people: Personas, path: str) -> None:
    client = APIClient()
    client.force_login(people.viewer)
    html = client.get(path).content.decode()
    for url in _referenced(html):
        assert url.startswith("/") and not url.startswith("//"), url
    assert not re.search(r"https?://", html.split("<script>", 1)[0]), "the page head names another host"
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html
    assert "validator.swagger.io" not in html
    if path.endswith("docs/"):
        assert '"validatorUrl": null' in html  # Swagger UI's default sends the schema URL to swagger.io
