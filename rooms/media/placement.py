"""Where a participant's media goes: pure rules over the nodes' published load.

Every node publishes its load with its heartbeat (``server.nodes.NodeRegistry.load``):
listeners on it, its cap (``media_node_max_listeners``) and the CPU it used (fraction of
one core). Speakers publish to the room's origin. A listener goes, in this order:

1. to a node already serving the room (its origin or one of its edges) that is below
   ``busy_cpu`` and its cap, the least loaded first: a room stays on as few nodes as it
   can, and the origin sends each packet once per node, not per listener;
2. else to the least loaded node that is below its cap: it becomes an edge of the room.

The router tries the candidates in that order; a node refuses a listener beyond its cap
(``node_full``), so a stale load figure costs one retry, never an overfull node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What one more listener costs a node, before it has any to measure (fraction of a core:
# a listener of three speakers is about 150 packets a second at 20-25 us each).
CPU_PER_LISTENER = 0.003


@dataclass(frozen=True)
class NodeLoad:
    id: str
    listeners: int = 0
    max_listeners: int = 1
    cpu: float = 0.0

    @classmethod
    def of(cls, node_id: str, load: Mapping[str, Any]) -> NodeLoad:
        """From a node's published load (missing figures: an idle node of one listener)."""
        return cls(
            node_id,
            listeners=int(load.get("listeners", 0)),
            max_listeners=int(load.get("max_listeners", 1)),
            cpu=float(load.get("cpu", 0.0)),
        )

    @property
    def open(self) -> bool:
        return self.listeners < self.max_listeners

    @property
    def score(self) -> float:
        """Lower is less loaded: CPU, plus how full the node is."""
        return self.cpu + self.listeners / max(1, self.max_listeners)

    def plus(self, listeners: int) -> NodeLoad:
        """This load with ``listeners`` more (placed since it was published): their CPU is
        estimated from what the node's listeners cost it so far."""
        if not listeners:
            return self
        each = self.cpu / self.listeners if self.listeners else CPU_PER_LISTENER
        total = self.listeners + listeners
        return NodeLoad(self.id, total, self.max_listeners, self.cpu + listeners * each)


def _least_loaded(loads: Sequence[NodeLoad]) -> list[NodeLoad]:
    return sorted(loads, key=lambda n: (n.score, n.id))


def listener_nodes(
    loads: Mapping[str, NodeLoad], serving: Sequence[str], busy_cpu: float
) -> list[str]:
    """Candidate nodes for a listener of a room served by ``serving``, best first."""
    warm = [loads[n] for n in serving if n in loads and loads[n].open and loads[n].cpu < busy_cpu]
    ordered = _least_loaded(warm) + _least_loaded([n for n in loads.values() if n.open])
    seen: dict[str, None] = {}
    for node in ordered:
        seen.setdefault(node.id)
    return list(seen)


def origin_nodes(
    loads: Mapping[str, NodeLoad], own: str, busy_cpu: float, *, listener: bool
) -> list[str]:
    """Candidates to become a room's origin, best first: this node unless it is busy (the
    participant's signaling is here already), then the least loaded nodes (for a listener,
    only nodes below their cap: the one claiming the room serves them too)."""
    usable = [n for n in loads.values() if n.open or not listener]
    ids = [n.id for n in _least_loaded(usable)]
    mine = loads.get(own)
    if mine is not None and own in ids and mine.cpu < busy_cpu:
        ids.remove(own)
        ids.insert(0, own)
    return ids
