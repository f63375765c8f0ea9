"""The OpenAPI 3.1 document, built from the endpoints' pydantic models, and a docs page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse

from server.api import PATH_PARAM, Api, Endpoint
from server.errors import NotFound
from server.http_errors import ErrorResponse
from server.webclient import static_dir

REF = "#/components/schemas/{model}"
# Every path parameter is a user, story or room id: URL-safe, like server.auth.USER_ID.
PATH_PARAM_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }


def _parameters(ep: Endpoint) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAM_SCHEMA}
        for name in ep.path_params
    ]
    if ep.query_model is not None:
        qs = ep.query_model.model_json_schema(ref_template=REF)
        required = set(qs.get("required", []))
        for name, prop in qs.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return params


def _request_body(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any] | None:
    if ep.body_model is not None:
        schema = _schema(ep.body_model, components, "validation")
        return {"required": True, "content": {"application/json": {"schema": schema}}}
    return ep.request_body


def _responses(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if ep.status == 204:
        responses["204"] = {"description": "Done"}
    elif ep.response_model is not None:
        schema = _schema(ep.response_model, components, "serialization")
        content = {"application/json": {"schema": schema}}
        responses[str(ep.status)] = {"description": "OK", "content": content}
    for status, spec in ep.responses.items():
        responses[str(status)] = spec
    errors = [
        ("400", "Malformed request"),
        ("413", "Body too large"),
        ("422", "Request does not match the schema"),
        ("429", "Rate limited"),
        ("503", "Store unavailable"),
    ]
    if ep.auth:
        errors += [("401", "Missing or invalid token"), ("403", "Not allowed")]
    if ep.path_params:
        errors.append(("404", "Not found"))
    errors.append(("409", "Conflict with the object's state"))
    for code, description in errors:
        responses.setdefault(code, _error(description))
    return responses


def _operation(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": ep.handler.__name__,
        "tags": ep.tags,
        "parameters": _parameters(ep),
    }
    body = _request_body(ep, components)
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _responses(ep, components)
    if ep.auth:
        op["security"] = [{"bearer": []}]
    return op


def build_openapi(apis: list[Api], *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    _schema(ErrorResponse, components, "serialization")
    paths: dict[str, Any] = {}
    for api in apis:
        for ep in api.endpoints:
            path = PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", ep.path)
            paths.setdefault(path, {})[ep.method.lower()] = _operation(ep, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def openapi_endpoint(schema: dict[str, Any]) -> Any:
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(schema)

    return openapi


async def docs(request: Request) -> FileResponse:
    """A human-readable page rendered from /openapi.json."""
    static = static_dir()
    if static is None:
        raise NotFound("this installation has no web client files", code="no_web_client")
    return FileResponse(static / "docs.html", media_type="text/html")
