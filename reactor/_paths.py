"""Step paths inside an execution: ``"charge"``, ``"payment.charge"`` in a compose child,
``"lines[3].approve"`` in element 3 of a map. A frame's *prefix* is the path of its
node plus a dot (``""`` for the root frame)."""

from __future__ import annotations

from ._plan import Plan

__all__ = ["map_group", "plan_at", "split"]


def split(path: str) -> tuple[str, str]:
    """``"lines[3].approve"`` -> ``("lines[3].", "approve")``."""
    prefix, _, name = path.rpartition(".")
    return (prefix + "." if prefix else ""), name


def plan_at(root: Plan, prefix: str) -> Plan | None:
    """The plan of the frame at ``prefix`` (``""``, ``"payment."``, ``"lines[3].x."``), or
    ``None`` when the plan declares no such frame (any more)."""
    plan: Plan | None = root
    for part in prefix.split(".")[:-1]:
        node = plan.nodes.get(part.partition("[")[0]) if plan else None
        if node is None or node.child is None or (("[" in part) != node.kind.per_item):
            return None
        plan = node.child
    return plan


def map_group(path: str, start: int) -> tuple[str, int] | None:
    """The first map element at or after ``start`` in ``path``: (map path, index)."""
    bracket = path.find("[", start)
    if bracket < 0:
        return None
    close = path.index("]", bracket)
    return path[:bracket], int(path[bracket + 1 : close])
