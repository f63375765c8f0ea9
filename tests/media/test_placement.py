"""Where participants' media goes (rooms.media.placement): pure rules over published load."""

from __future__ import annotations

from rooms.media.placement import NodeLoad, listener_nodes, origin_nodes


def loads(*nodes: NodeLoad) -> dict[str, NodeLoad]:
    return {n.id: n for n in nodes}


def test_a_listener_stays_on_the_nodes_serving_the_room_while_they_are_not_busy() -> None:
    nodes = loads(
        NodeLoad("origin", listeners=100, max_listeners=500, cpu=0.5),
        NodeLoad("idle", listeners=0, max_listeners=500, cpu=0.0),
    )
    assert listener_nodes(nodes, ["origin"], busy_cpu=0.6) == ["origin", "idle"]
    # Busy: the least loaded node comes first (it becomes an edge of the room).
    busy = {**nodes, "origin": NodeLoad("origin", 100, 500, cpu=0.7)}
    assert listener_nodes(busy, ["origin"], busy_cpu=0.6) == ["idle", "origin"]


def test_full_nodes_are_never_candidates_and_edges_share_by_load() -> None:
    nodes = loads(
        NodeLoad("origin", listeners=0, max_listeners=0, cpu=0.1),  # speakers only
        NodeLoad("edge1", listeners=40, max_listeners=50, cpu=0.3),
        NodeLoad("edge2", listeners=10, max_listeners=50, cpu=0.1),
        NodeLoad("full", listeners=50, max_listeners=50, cpu=0.0),
    )
    serving = ["origin", "edge1", "edge2"]
    assert listener_nodes(nodes, serving, busy_cpu=0.6) == ["edge2", "edge1"]
    assert listener_nodes(loads(NodeLoad("full", 5, 5)), ["full"], busy_cpu=0.6) == []


def test_placed_listeners_count_before_the_next_published_load() -> None:
    a, b = NodeLoad("a", 10, 100, 0.2), NodeLoad("b", 10, 100, 0.2)
    assert listener_nodes(loads(a.plus(5), b), [], busy_cpu=0.6)[0] == "b"
    assert not NodeLoad("c", 99, 100).plus(1).open


def test_the_origin_is_this_node_unless_it_is_busy_or_full_for_a_listener() -> None:
    nodes = loads(NodeLoad("me", 0, 10, cpu=0.3), NodeLoad("other", 0, 10, cpu=0.0))
    assert origin_nodes(nodes, "me", 0.6, listener=False) == ["me", "other"]
    busy = {**nodes, "me": NodeLoad("me", 0, 10, cpu=0.9)}
    assert origin_nodes(busy, "me", 0.6, listener=False) == ["other", "me"]
    speakers_only = {**nodes, "me": NodeLoad("me", 0, 0, cpu=0.0)}
    assert origin_nodes(speakers_only, "me", 0.6, listener=False)[0] == "me"
    assert origin_nodes(speakers_only, "me", 0.6, listener=True) == ["other"]


def test_published_load_is_read_with_defaults() -> None:
    assert NodeLoad.of("n", {"listeners": 3, "max_listeners": 9, "cpu": 0.25}) == NodeLoad(
        "n", 3, 9, 0.25
    )
    assert NodeLoad.of("n", {}).open  # an idle node without figures yet
