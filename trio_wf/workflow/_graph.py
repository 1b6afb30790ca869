"""The frozen records a loaded graph is made of: `Graph`, `Node`, `Link`, and
the `GraphAnalysis` computed when it is loaded.

Records only: they are built by `._parse` and `._analysis`, which import this
module and nothing imports back.  The node-id and input-name normalisers live
here too, since every module that reads ids (parsing, sub-graphs, selectors)
must agree on them, as must every message that names a link.

The records mirror the ewoks JSON format (schema 1.0-1.2) after normalisation:
JSON lists used as node ids become tuples, digit-string input names become ints
(positional inputs), and every attribute trio_wf does not know is kept,
untouched, in ``extra``.  The records hold fresh containers (the caller's dict is never
modified nor aliased at the container level); values such as ``default_inputs``
values are shared with the source, and the engine never mutates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, final

import attrs

from .._util import quote
from . import _limits

if TYPE_CHECKING:
    NodeId: TypeAlias = "str | int | tuple[NodeId, ...]"
else:  # the recursive form is for type checkers; Sphinx cannot render it
    NodeId = str | int | tuple

#: An input name: a keyword (str) or a position (int).
InputName: TypeAlias = str | int


class Invalid(Exception):
    """A problem with one value; the caller adds where it was found."""


def normalise_id(value: Any) -> NodeId:
    """Normalise a node id: JSON lists become tuples."""
    return _normalise_id(value, 0)


def _normalise_id(value: Any, depth: int) -> NodeId:
    if isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return value
    if isinstance(value, (list, tuple)) and value:
        # Loaded documents are depth-checked already; ids given as options
        # (inputs=, outputs=) are not, and must not overflow the stack either.
        if depth >= _limits.MAX_GRAPH_DEPTH:
            msg = f"is nested more than {_limits.MAX_GRAPH_DEPTH} levels deep"
            raise Invalid(msg)
        return tuple(_normalise_id(part, depth + 1) for part in value)
    msg = f"must be a string, an int or a list of them, got {quote(value)}"
    raise Invalid(msg)


def normalise_name(value: Any) -> InputName:
    """Normalise an input name: ASCII digit strings are positions.

    Positions are checked against `MAX_POSITION` here, when a graph is read, so
    that nothing later does work in proportion to one.
    """
    position: int | None = None
    if isinstance(value, str):
        # Not str.isdigit(), which "²" passes and int() then refuses.
        if not (value.isascii() and value.isdigit()):
            return value
        # Leading zeros aside, a long digit string is a huge position: refuse
        # it without converting it (int() refuses 4300 digits and more).
        if len(value.lstrip("0")) <= len(str(_limits.MAX_POSITION)):
            position = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        position = value
    else:
        msg = f"must be a string or an int, got {quote(value)}"
        raise Invalid(msg)
    if position is None or not 0 <= position <= _limits.MAX_POSITION:
        msg = (
            f"must be a string or an int from 0 to {_limits.MAX_POSITION} "
            f"(a position), got {quote(value)}"
        )
        raise Invalid(msg)
    return position


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
        argv: the program and arguments a ``script`` node runs, else
            ``None`` (the interpreter of a script file is added when it runs).
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


def describe_link(index: int, source: NodeId, target: NodeId) -> str:
    """``link 3 ('a' -> 'b')``: how messages name a link."""
    return f"link {index} ({quote(source)} -> {quote(target)})"


@final
@attrs.frozen
class Loop:
    """A loop: a strongly connected component of the graph, run in rounds.

    Attributes:
        nodes: the positions of its nodes, in the graph's order.
        entries: the numbers of the links into it from outside.
        exits: the numbers of the links out of it.
    """

    nodes: tuple[int, ...]
    entries: tuple[int, ...]
    exits: tuple[int, ...]


@final
@attrs.frozen
class GraphAnalysis:
    """Whole-graph properties of a `Graph`, computed once when it is loaded.

    Attributes:
        order: every node id, sources before targets, ties broken by id (ints,
            then strings, then tuples).  Results are merged in this order.
        start_nodes: the nodes execution starts from: nodes without incoming
            links, and nodes with ``force_start_node``; in ``order``.
        end_nodes: the nodes whose outputs make up the result by default: nodes
            whose outgoing links are all ``on_error`` links; in ``order``.
        required: one flag per link of `Graph.links`: whether the target must
            wait for that link to fire before it can run.  An explicit
            ``required`` wins; conditional and ``on_error`` links are optional;
            any other link is required unless an optional link lies anywhere
            upstream of its source (the ewokscore 5.0 rule).
        loops: the node ids of each loop (strongly connected component) of
            the graph, in ``order``; see :ref:`loops`.
    """

    order: tuple[NodeId, ...]
    start_nodes: tuple[NodeId, ...]
    end_nodes: tuple[NodeId, ...]
    required: tuple[bool, ...]
    loops: tuple[tuple[NodeId, ...], ...]
    # Index-based views for the walker: node position in Graph.nodes, the source
    # and target position of every link, and each node's link numbers.
    index: Mapping[NodeId, int] = attrs.field(repr=False)
    rank: tuple[int, ...] = attrs.field(repr=False)
    sources: tuple[int, ...] = attrs.field(repr=False)
    targets: tuple[int, ...] = attrs.field(repr=False)
    in_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    out_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    # Per node, the number of its loop in loop_info, or -1.
    loop_of: tuple[int, ...] = attrs.field(repr=False)
    loop_info: tuple[Loop, ...] = attrs.field(repr=False)
    # Per link, per condition: None, or for an "else" condition the values the
    # source's other conditions test on the same output.
    else_values: tuple[tuple[tuple[Any, ...] | None, ...], ...] = attrs.field(
        repr=False
    )


@final
@attrs.frozen
class Graph:
    """A validated, analysed workflow graph, as `load_graph` returns it.

    Attributes:
        id: the graph's ``id``, or ``None``.
        label: the graph's ``label``, or ``None``.
        schema_version: the ewoks schema version the graph was written for.
        nodes: node id to `Node`, in the order of the source.
        links: the `Link` records, in the order of the source, at each
            level of sub-graphs: the links of its sub-graphs (in the order of
            their graph nodes), its own, then those made to its default
            error nodes.
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
