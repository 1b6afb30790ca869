"""A graph as a picture: Mermaid text, Graphviz DOT, and a layered layout.

``trio-wf show`` prints the Mermaid text (GitHub, GitLab and most Markdown
viewers draw it) or, where Graphviz's ``dot`` is installed, renders the DOT to
SVG or PNG.  The run report draws the graph itself from `layers`, so that it
needs no program and no script from the network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from ._graph import Graph, Link, NodeId


def layers(graph: Graph) -> list[list[NodeId]]:
    """The nodes in columns: each node one column right of its furthest source.

    Links that go back (in a loop, to a node no later in the graph's order) do
    not push their target right, so a loop is drawn as a row, not a spiral.
    """
    analysis = graph.analysis
    depth: dict[NodeId, int] = {}
    for node_id in analysis.order:
        i = analysis.index[node_id]
        depth[node_id] = max(
            (
                depth[graph.links[k].source] + 1
                for k in analysis.in_links[i]
                if analysis.rank[analysis.sources[k]] < analysis.rank[i]
            ),
            default=0,
        )
    columns: list[list[NodeId]] = [
        [] for _ in range(max(depth.values(), default=-1) + 1)
    ]
    for node_id in analysis.order:
        columns[depth[node_id]].append(node_id)
    return columns


def link_label(link: Link) -> str:
    """What a drawn link says: its conditions, or that it fires on error."""
    if link.on_error:
        return "on error"
    return " and ".join(
        f"{condition.source_output} == {json.dumps(condition.value, default=repr)}"
        for condition in link.conditions
    )


def mermaid(graph: Graph) -> str:
    """The graph as a Mermaid ``flowchart`` (left to right)."""
    names = _short_names(graph)
    lines = ["flowchart LR"]
    for node_id, node in graph.nodes.items():
        label = _mermaid_text(node.display_label)
        lines.append(f'    {names[node_id]}["{label}"]')
    for link in graph.links:
        arrow = "-.->" if link.on_error else "-->"
        label = link_label(link)
        middle = f'|"{_mermaid_text(label)}"|' if label else ""
        lines.append(f"    {names[link.source]} {arrow}{middle} {names[link.target]}")
    return "\n".join(lines) + "\n"


def dot(graph: Graph) -> str:
    """The graph in Graphviz's DOT language (left to right)."""
    names = _short_names(graph)
    lines = [
        "digraph workflow {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded", fontname="sans-serif"];',
        '    edge [fontname="sans-serif", fontsize=10];',
    ]
    for node_id, node in graph.nodes.items():
        lines.append(f"    {names[node_id]} [label={_dot_text(node.display_label)}];")
    for link in graph.links:
        attributes = []
        label = link_label(link)
        if label:
            attributes.append(f"label={_dot_text(label)}")
        if link.on_error:
            attributes.append("style=dashed")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {names[link.source]} -> {names[link.target]}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(graph: Graph, output_format: str) -> bytes:
    """The graph drawn by Graphviz as ``svg`` or ``png``.

    Raises:
        FileNotFoundError: Graphviz's ``dot`` is not on ``PATH``.
        RuntimeError: ``dot`` failed.
    """
    program = shutil.which("dot")
    if program is None:
        msg = (
            "Graphviz's dot program is not on PATH: install Graphviz to draw "
            "SVG or PNG, or print the Mermaid text instead"
        )
        raise FileNotFoundError(msg)
    result = subprocess.run(
        [program, f"-T{output_format}"],
        input=dot(graph).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        msg = f"dot failed: {result.stderr.decode(errors='replace').strip()}"
        raise RuntimeError(msg)
    return result.stdout


def _short_names(graph: Graph) -> dict[NodeId, str]:
    # Node ids may be any string, int or tuple: both languages get safe names,
    # and the id itself is shown only through the label.
    return {node_id: f"n{i}" for i, node_id in enumerate(graph.nodes)}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", " ")


def _dot_text(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=False)
