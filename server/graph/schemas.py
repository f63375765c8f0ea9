"""Wire shapes of the graph endpoints (user pages are reused by other features' lists)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PageQuery(BaseModel):
    cursor: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=200)


class UserPage(BaseModel):
    users: list[str]
    next_cursor: int | None


class Me(BaseModel):
    user_id: str
    followers: int
    following: int


class Relationship(BaseModel):
    user_id: str
    following: bool
    followed_by: bool
    blocked: bool
    close_friend: bool
