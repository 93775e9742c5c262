"""Render a plan as a Mermaid flowchart."""

from __future__ import annotations

from ._graph import Plan

__all__ = ["mermaid"]

_SHAPES = {
    "step": ('["', '"]'),
    "interrupt": ('{{"', '"}}'),
    "compose": ('[["', '"]]'),
    "map": ('[["', '"]]'),
}


def _id(prefix: str, name: str) -> str:
    return (prefix + name).replace(".", "__").replace("[", "_").replace("]", "_")


def _lines(plan: Plan, prefix: str, indent: str) -> list[str]:
    lines: list[str] = []
    for name in plan.inputs:
        lines.append(f'{indent}{_id(prefix, "in_" + name)}(["input: {name}"])')
    for name, node in plan.nodes.items():
        left, right = _SHAPES[node.kind]
        label = name if node.kind == "step" else f"{node.kind}: {name}"
        if node.undo is not None:
            label += " ↺"
        lines.append(f"{indent}{_id(prefix, name)}{left}{label}{right}")
        if node.child is not None:
            title = f"{name}: {node.child.reactor.__qualname__}" + (
                " (each item)" if node.kind == "map" else ""
            )
            lines.append(f'{indent}subgraph {_id(prefix, name)}_child["{title}"]')
            lines.extend(_lines(node.child, f"{prefix}{name}.", indent + "    "))
            lines.append(f"{indent}end")
            lines.append(f"{indent}{_id(prefix, name)}_child -.-> {_id(prefix, name)}")
    for name, node in plan.nodes.items():
        for dep in node.deps:
            arrow = (
                "-.->" if dep in node.decl.wait_for and dep not in _data_deps(plan, name) else "-->"
            )
            lines.append(f"{indent}{_id(prefix, dep)} {arrow} {_id(prefix, name)}")
        call_inputs = {
            b.name
            for call in (node.call, node.correlation)
            if call is not None
            for b in call.bindings
            if b.kind == "input"
        } | {b.name for b in node.child_inputs if b.kind == "input"}
        if node.over is not None and node.over.kind == "input":
            call_inputs.add(node.over.name)
        for input_name in sorted(call_inputs):
            lines.append(f"{indent}{_id(prefix, 'in_' + input_name)} --> {_id(prefix, name)}")
    return lines


def _data_deps(plan: Plan, name: str) -> set[str]:
    node = plan.nodes[name]
    found = {
        b.name
        for call in (node.call, node.correlation)
        if call
        for b in call.bindings
        if b.kind == "result"
    }
    found |= {b.name for b in node.child_inputs if b.kind == "result"}
    if node.over is not None and node.over.kind == "result":
        found.add(node.over.name)
    return found


def mermaid(plan: Plan) -> str:
    """The flowchart text: inputs as stadiums, steps as boxes, interrupts as hexagons,
    compose/map children as subgraphs; dotted arrows are ``wait_for`` ordering."""
    return "\n".join(["flowchart TD", *_lines(plan, "", "    ")]) + "\n"
