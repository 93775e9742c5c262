"""Render a plan as a Mermaid flowchart."""

from __future__ import annotations

from ._plan import Plan

__all__ = ["mermaid"]


def _id(prefix: str, name: str) -> str:
    return (prefix + name).replace(".", "__").replace("[", "_").replace("]", "_")


def _lines(plan: Plan, prefix: str, indent: str) -> list[str]:
    lines: list[str] = []
    for name in plan.inputs:
        lines.append(f'{indent}{_id(prefix, "in_" + name)}(["input: {name}"])')
    for name, node in plan.nodes.items():
        left, right = node.kind.shape
        label = node.kind.label(name)
        if node.undo is not None:
            label += " ↺"
        lines.append(f"{indent}{_id(prefix, name)}{left}{label}{right}")
        if node.child is not None:
            title = f"{name}: {node.child.reactor.__qualname__}" + (
                " (each item)" if node.kind.per_item else ""
            )
            lines.append(f'{indent}subgraph {_id(prefix, name)}_child["{title}"]')
            lines.extend(_lines(node.child, f"{prefix}{name}.", indent + "    "))
            lines.append(f"{indent}end")
            lines.append(f"{indent}{_id(prefix, name)}_child -.-> {_id(prefix, name)}")
    for name, node in plan.nodes.items():
        data = node.data_deps
        for dep in node.deps:
            arrow = "-.->" if dep not in data else "-->"
            lines.append(f"{indent}{_id(prefix, dep)} {arrow} {_id(prefix, name)}")
        for input_name in sorted(node.input_deps):
            lines.append(f"{indent}{_id(prefix, 'in_' + input_name)} --> {_id(prefix, name)}")
    return lines


def mermaid(plan: Plan) -> str:
    """The flowchart text: inputs as stadiums, steps as boxes, interrupts as hexagons,
    compose/map children as subgraphs; dotted arrows are ``wait_for`` ordering."""
    return "\n".join(["flowchart TD", *_lines(plan, "", "    ")]) + "\n"
