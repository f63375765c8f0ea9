"""HTTP endpoints of the social graph. Users are named by the ids in their tokens."""

from __future__ import annotations

from server.api import Api, Ctx
from server.auth import valid_user_id
from server.errors import Forbidden
from server.feature import Slot
from server.graph.rules import other_user
from server.graph.schemas import Me, PageQuery, Relationship, UserPage
from server.graph.store import Graph

api = Api("graph")
GRAPH: Slot[Graph] = Slot("graph")


def graph(ctx: Ctx) -> Graph:
    return GRAPH.of(ctx.request)


@api.get("/v1/me")
async def get_me(ctx: Ctx) -> Me:
    """Who the token names, with follower counts."""
    followers, following = await graph(ctx).counts(ctx.user)
    return Me(user_id=ctx.user, followers=followers, following=following)


@api.get("/v1/users/{user_id}/relationship")
async def get_relationship(ctx: Ctx, user_id: str) -> Relationship:
    """How the caller and another user are connected."""
    target = other_user(ctx.user, user_id)
    g = graph(ctx)
    return Relationship(
        user_id=target,
        following=await g.follows(ctx.user, target),
        followed_by=await g.follows(target, ctx.user),
        blocked=await g.has_blocked(ctx.user, target),
        close_friend=await g.is_close_friend(ctx.user, target),
    )


@api.put("/v1/users/{user_id}/follow")
async def follow(ctx: Ctx, user_id: str) -> None:
    """Follow a user (idempotent)."""
    target = other_user(ctx.user, user_id)
    g = graph(ctx)
    if await g.is_blocked_between(ctx.user, target):
        raise Forbidden("you cannot follow this user", code="blocked")
    await g.follow(ctx.user, target)


@api.delete("/v1/users/{user_id}/follow")
async def unfollow(ctx: Ctx, user_id: str) -> None:
    """Stop following a user (idempotent)."""
    await graph(ctx).unfollow(ctx.user, other_user(ctx.user, user_id))


async def _visible_list(ctx: Ctx, user_id: str) -> str:
    valid_user_id(user_id)
    if user_id != ctx.user and await graph(ctx).is_blocked_between(ctx.user, user_id):
        raise Forbidden("you cannot see this user's connections", code="blocked")
    return user_id


@api.get("/v1/users/{user_id}/followers")
async def list_followers(ctx: Ctx, user_id: str, query: PageQuery) -> UserPage:
    """A user's followers, newest first."""
    target = await _visible_list(ctx, user_id)
    users, nxt = await graph(ctx).followers_page(target, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.get("/v1/users/{user_id}/following")
async def list_following(ctx: Ctx, user_id: str, query: PageQuery) -> UserPage:
    """Whom a user follows, newest first."""
    target = await _visible_list(ctx, user_id)
    users, nxt = await graph(ctx).following_page(target, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.get("/v1/me/blocks")
async def list_blocks(ctx: Ctx, query: PageQuery) -> UserPage:
    """Users the caller blocked."""
    users, nxt = await graph(ctx).blocks_page(ctx.user, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/blocks/{user_id}")
async def block(ctx: Ctx, user_id: str) -> None:
    """Block a user: they cannot see your stories or join your rooms; follows both ways end."""
    await graph(ctx).block(ctx.user, other_user(ctx.user, user_id))


@api.delete("/v1/me/blocks/{user_id}")
async def unblock(ctx: Ctx, user_id: str) -> None:
    """Unblock a user."""
    await graph(ctx).unblock(ctx.user, other_user(ctx.user, user_id))


@api.get("/v1/me/close-friends")
async def list_close_friends(ctx: Ctx, query: PageQuery) -> UserPage:
    """The caller's close friends (the audience of close-friends stories)."""
    users, nxt = await graph(ctx).close_friends_page(ctx.user, query.cursor, query.limit)
    return UserPage(users=users, next_cursor=nxt)


@api.put("/v1/me/close-friends/{user_id}")
async def add_close_friend(ctx: Ctx, user_id: str) -> None:
    """Add a user to the caller's close friends."""
    target = other_user(ctx.user, user_id)
    g = graph(ctx)
    if await g.is_blocked_between(ctx.user, target):
        raise Forbidden("blocked users cannot be close friends", code="blocked")
    await g.add_close_friend(ctx.user, target)


@api.delete("/v1/me/close-friends/{user_id}")
async def remove_close_friend(ctx: Ctx, user_id: str) -> None:
    """Remove a user from the caller's close friends."""
    await graph(ctx).remove_close_friend(ctx.user, other_user(ctx.user, user_id))
