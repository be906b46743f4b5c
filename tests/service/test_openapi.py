"""/openapi.json: every route the application has, documented, and a valid OpenAPI 3.1 document."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from _service import Served, Starter
from aiohttp import web

from capsvc.service import CaptureService, ServiceConfig, SessionSpec, SinkSpec, SourceSpec
from capsvc.service._http import TokenRef, build_app
from capsvc.service._openapi import OPERATIONS, PUBLIC, document


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route but the HEAD twins aiohttp adds to each GET."""
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }


def doc_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}


async def served_doc(srv: Served) -> dict[str, Any]:
    status, doc = await srv.get("/openapi.json")
    assert status == 200
    return doc  # type: ignore[no-any-return]


async def test_every_route_is_listed_and_documented(serve: Starter) -> None:
    """The document lists exactly the running application's routes, each with a summary.

    Mutation: a route added to the app with neither an OPERATIONS entry nor a docstring shows
    as "undocumented" and fails here; a route left out of the document fails the set equality.
    """
    srv = await serve()
    app = build_app(srv.service, TokenRef("x"))
    doc = await served_doc(srv)
    routes = app_routes(app)
    assert len(routes) >= 14  # sessions, streams, capture, files, metrics, page, the document
    assert doc_routes(doc) == routes
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["summary"] != "undocumented", (method, path)
            assert op["responses"], (method, path)
            params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert params == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    assert set(OPERATIONS) <= routes  # no entry for a route that no longer exists


def test_documents_a_route_added_later_from_its_docstring() -> None:
    svc = CaptureService(ServiceConfig())
    app = build_app(svc, TokenRef("x"))

    async def histogram(request: web.Request) -> web.Response:
        """Packet sizes of a session.

        Counted in powers of two."""
        return web.json_response({})

    app.router.add_get("/v1/sessions/{name}/sizes", histogram)
    op = document(app)["paths"]["/v1/sessions/{name}/sizes"]["get"]
    assert op["summary"] == "Packet sizes of a session."
    assert op["description"] == "Counted in powers of two."
    assert [p["name"] for p in op["parameters"]] == ["name"]
    assert op["security"] == [{"bearer": []}] and "401" in op["responses"]


async def test_security_says_which_routes_need_the_token(serve: Starter) -> None:
    srv = await serve()
    doc = await served_doc(srv)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            public = path in PUBLIC
            assert (op["security"] == []) == public, (method, path)
            concrete = path.replace("{file}", "app.js").replace("{name}", "x")
            async with srv.client.request(method.upper(), srv.url + concrete) as resp:
                if public:
                    assert resp.status != 401, path
                else:
                    assert resp.status == 401, (method, path)
    async with srv.client.get(srv.url + "/openapi.json") as resp:
        assert resp.status == 401


async def test_is_a_valid_openapi_document(serve: Starter) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    srv = await serve()
    validator.validate(await served_doc(srv))


async def test_session_spec_schema_has_the_spec_keys(serve: Starter) -> None:
    """The request body schema names exactly the keys a session spec takes."""
    srv = await serve()
    schemas = (await served_doc(srv))["components"]["schemas"]
    spec_keys = {f.name for f in dataclasses.fields(SessionSpec)}
    assert set(schemas["SessionSpec"]["properties"]) == spec_keys
    source_keys = {f.name for f in dataclasses.fields(SourceSpec)} - {"options"}
    assert set(schemas["SessionSpec"]["properties"]["source"]["properties"]) == source_keys
    assert set(schemas["SinkSpec"]["properties"]) == {f.name for f in dataclasses.fields(SinkSpec)}
    post = (await served_doc(srv))["paths"]["/v1/sessions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SessionSpec"
    )
