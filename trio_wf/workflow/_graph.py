"""The frozen records a loaded graph is made of: `Graph`, `Node`, `Link`.

They mirror the ewoks JSON format (schema 1.0-1.2) after normalisation: JSON lists
used as node ids become tuples, digit-string input names become ints (positional
inputs), and every attribute trio_wf does not know is kept, untouched, in
``extra``.  The records hold fresh containers (the caller's dict is never
modified nor aliased at the container level); values such as ``default_inputs``
values are shared with the source, and the engine never mutates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, final

import attrs

if TYPE_CHECKING:
    from ._analysis import GraphAnalysis

    NodeId: TypeAlias = "str | int | tuple[NodeId, ...]"
else:  # the recursive form is for type checkers; Sphinx cannot render it
    NodeId = str | int | tuple

#: An input name: a keyword (str) or a position (int).
InputName: TypeAlias = str | int

#: The task types the engine can execute.
SUPPORTED_TASK_TYPES = ("method", "ppfmethod", "ppfport", "class", "script", "graph")
#: Task types of the ewoks format that trio_wf does not execute yet.
UNSUPPORTED_TASK_TYPES = ("notebook", "generated")


@final
@attrs.frozen
class DataMapping:
    """One entry of a link's ``data_mapping``.

    Attributes:
        source_output: the output of the source node to pass on, or ``None`` to
            pass the source's whole output dict.
        target_input: the input of the target node it becomes (an int is a
            positional argument).
    """

    source_output: str | None
    target_input: InputName


@final
@attrs.frozen
class Condition:
    """One entry of a link's ``conditions``: the link fires only if all hold.

    Attributes:
        source_output: the output of the source node to test.
        value: the value it must equal; the source node's
            ``conditions_else_value`` means "any value none of its other
            conditions on this output test for".
    """

    source_output: str
    value: Any


@final
@attrs.frozen
class Node:
    """A node of a `Graph`: a task and its default inputs.

    Attributes:
        id: the node id.
        label: the ``label`` attribute, or ``None``.
        task_type: ``"method"``, ``"ppfmethod"``, ``"ppfport"``, ``"class"``
            or ``"script"``.
        task_identifier: what to run, ``"pkg.module.function"`` or
            ``"path/file.py::function"`` (a class for ``class``); ``None``
            for ``ppfport``; the command, as written, for ``script``.
        default_inputs: input name to value; int names are positional.  Values
            given with ``inputs=`` are already applied.
        force_start_node: the node runs even if none of its links fired.
        conditions_else_value: the condition value meaning "else" on this node's
            outgoing links.
        default_error_node: the node receives the errors of every node that has
            no ``on_error`` link of its own (see :doc:`/workflows`).
        extra: every other attribute of the node, as written.
        argv: the program and arguments a ``script`` node runs, else ``None``.
    """

    id: NodeId
    label: str | None
    task_type: str
    task_identifier: str | None
    default_inputs: Mapping[InputName, Any]
    force_start_node: bool = False
    conditions_else_value: Any = None
    default_error_node: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    argv: tuple[str, ...] | None = None

    @property
    def display_label(self) -> str:
        """The label, or the id (tuple ids joined with ``:``) if there is none."""
        if self.label is not None:
            return self.label
        return display_id(self.id)


def display_id(node_id: NodeId) -> str:
    """``"a"`` for ``"a"``, ``"sub:a"`` for ``("sub", "a")``."""
    if isinstance(node_id, tuple):
        return ":".join(display_id(part) for part in node_id)
    return str(node_id)


@final
@attrs.frozen
class Link:
    """A link of a `Graph`: ordering, and optionally data, from source to target.

    Attributes:
        source: id of the source node.
        target: id of the target node.
        data_mapping: which outputs of the source become which inputs of the
            target.
        map_all_data: every output of the source becomes the input of the same
            name.
        conditions: the link fires only if all these hold for the source's
            outputs.
        on_error: the link fires only if the source fails, and carries the failure.
        required: as written: ``True``/``False``, or ``None`` to let the graph
            analysis decide (see `GraphAnalysis.required`).
        sub_source: the ``sub_source`` attribute, as written, when the link
            was rewired out of a sub-graph (see :ref:`sub-graphs`).
        sub_target: the ``sub_target`` attribute, as written, when the link
            was rewired into a sub-graph.
        extra: every other attribute of the link, as written.
    """

    source: NodeId
    target: NodeId
    data_mapping: tuple[DataMapping, ...] = ()
    map_all_data: bool = False
    conditions: tuple[Condition, ...] = ()
    on_error: bool = False
    required: bool | None = None
    sub_source: NodeId | None = None
    sub_target: NodeId | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def is_conditional(self) -> bool:
        """Whether the link fires only for some outcomes of its source."""
        return self.on_error or bool(self.conditions)


@final
@attrs.frozen
class Graph:
    """A validated, analysed workflow graph, as `load_graph` returns it.

    Attributes:
        id: the graph's ``id``, or ``None``.
        label: the graph's ``label``, or ``None``.
        schema_version: the ewoks schema version the graph was written for.
        nodes: node id to `Node`, in the order of the source.
        links: the `Link` records, in the order of the source (generated
            ``default_error_node`` links come last).
        trusted: whether the graph was loaded with ``trusted=True`` (its task
            identifiers were imported and checked).
        analysis: start nodes, end nodes, required links and node order.
        extra: every other attribute of the ``"graph"`` object (such as
            ``requirements``, ``input_nodes`` or ``uiProps``), as written.
        top_level_extra: every top-level key besides ``graph``, ``nodes`` and
            ``links`` (such as networkx's ``directed``), as written.
    """

    id: str | None
    label: str | None
    schema_version: str
    nodes: Mapping[NodeId, Node]
    links: tuple[Link, ...]
    trusted: bool
    analysis: GraphAnalysis = attrs.field(repr=False)
    extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    top_level_extra: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def display_name(self) -> str:
        """The graph as messages name it (its label, its id, or ``"workflow"``)."""
        if self.label is not None:
            return repr(self.label)
        return repr(self.id) if self.id is not None else "workflow"
