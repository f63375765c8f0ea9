"""The oEmbed endpoint (https://oembed.com) for room and public story links."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from server.api import Api, Ctx
from server.errors import NotFound
from server.feature import Slot
from server.share.service import ShareService
from server.unfurl import oembed, oembed_xml

api = Api("share")
SHARE: Slot[ShareService] = Slot("share")


class OEmbedQuery(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    format: Literal["json", "xml"] = "json"
    maxwidth: Annotated[int, Field(ge=1, le=100_000)] | None = None
    maxheight: Annotated[int, Field(ge=1, le=100_000)] | None = None


def error_doc(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class OEmbed(BaseModel):
    version: str
    type: str
    title: str
    provider_name: str
    provider_url: str
    author_name: str | None = None
    cache_age: int | None = None
    thumbnail_url: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None


@api.get(
    "/oembed",
    auth=False,
    responses={
        200: {
            "description": "An oEmbed 1.0 link document",
            "content": {
                "application/json": {"schema": OEmbed.model_json_schema()},
                "text/xml": {},
            },
        },
        404: error_doc("Not a room or public story link of this server"),
    },
)
async def get_oembed(ctx: Ctx, query: OEmbedQuery) -> Response:
    """oEmbed for room and public story links (``?url=<share link>&format=json|xml``)."""
    meta = await SHARE.of(ctx.request).resolve(query.url)
    if meta is None:
        raise NotFound("nothing to embed at this URL", code="not_found")
    base = ctx.settings.public_base_url
    doc = OEmbed.model_validate(oembed(meta, base, query.maxwidth, query.maxheight))
    body = doc.model_dump(exclude_none=True)
    headers = {"Cache-Control": f"public, max-age={meta.cache_age or 60}"}
    if query.format == "xml":
        return Response(oembed_xml(body), media_type="text/xml", headers=headers)
    return JSONResponse(body, headers=headers)
