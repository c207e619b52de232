"""OpenAPI post-processing: the shared error shape, documented on every operation."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error has this shape.",
    "properties": {
        "detail": {"type": "string", "description": "A sentence for a person."},
        "code": {"type": "string", "description": "A stable machine code, e.g. not_found, invalid, throttled."},
        "errors": {
            "type": "object",
            "description": "Field errors: field name (dotted for nested fields) → messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail", "code", "errors"],
}

ERROR_EXAMPLES: dict[str, tuple[str, str, str]] = {
    "400": ("Invalid input", "The request has invalid fields.", "invalid"),
    "401": ("Not authenticated", "Authentication credentials were not provided.", "not_authenticated"),
    "403": ("Forbidden", "This API token has read scope; it cannot change anything.", "permission_denied"),
    "404": ("Not found", "No Candidate matches the given query.", "not_found"),
    "409": ("Wrong state", "Cannot triage candidate 42: it is signed_off; allowed from: predicted.", "invalid_state"),
    "412": ("Stale If-Match", "The candidate changed since you read it; fetch it again.", "precondition_failed"),
    "429": ("Throttled", "Request was throttled. Expected available in 12 seconds.", "throttled"),
}
SAFE = {"get", "head", "options"}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document 400/401/403/404/429 (and 409, 412 on writes) with the Error schema on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            codes = ["400", "401", "403", "404", "429"] + ([] if method in SAFE else ["409", "412"])
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, _error_response(code))
    return result


def _error_response(code: str) -> dict[str, Any]:
    summary, detail, machine_code = ERROR_EXAMPLES[code]
    example = {"detail": detail, "code": machine_code, "errors": {}}
    if code == "400":
        example["errors"] = {"min_score": ["Enter a number."]}
    return {
        "description": summary,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "examples": {code: {"value": example}},
            }
        },
    }
