"""Chains: nodes that will run one after the other, submitted to Dask at once.

On a Dask cluster, each node sent on its own costs a round trip through the
client and the scheduler: for short nodes down a chain, more than the nodes
themselves.  When a node starts, `plan_chain` finds the nodes its success
alone will make run, one after the other; a backend with ``start_chain`` (a
`trio_wf._dask.DaskContext`) runs them in one task, each taking its
predecessor's result.  The walker still records each node in turn, as its
outcome comes back: events, errors, timeouts and kill-on-cancel stay per node.

Node ``j`` follows node ``a`` in a chain only if nothing but ``a``'s success can
decide it, and ``a`` decides no other node (those would wait for the chain's
outcomes): both run outside loops, are ``method`` nodes with no cache, no
ewoks settings and no ``force_start_node``, every link into ``j`` comes from
``a`` and fires whenever ``a`` succeeds (no condition, not ``on_error``), and
its data can be made on the worker: ``return_value``, or all of ``a``'s
outputs (which are exactly ``{"return_value": value}`` for a method node).
Then the walker would run ``j`` right after ``a``, with the inputs
`_trio_wf_worker._chain.run_after` makes: the same result, sooner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from _trio_wf_worker._chain import run_after
from _trio_wf_worker._tasks import run_task

from ._events import NodeStatus
from ._graph import InputName

if TYPE_CHECKING:
    from ._state import RunState

#: The most nodes submitted at once; a longer chain goes on in a new one.
MAX_CHAIN = 32
_VALUE = "return_value"


@attrs.frozen
class Step:
    """A node that follows the previous one of its chain."""

    node: int
    feeds: tuple[tuple[InputName, bool], ...]
    positional: int


def plan_chain(
    run: RunState, first: int, inputs: Mapping[InputName, Any] | Exception
) -> list[Step]:
    """The nodes that will run after ``first``, in order, if each succeeds."""
    if run.cache is not None or getattr(run.runner, "ewoks", None) is not None:
        return []
    if not hasattr(run.runner.backend, "start_chain") or not _method(run, first):
        return []
    if isinstance(inputs, Exception) or not _numbered(inputs):
        return []  # the walker reports the error
    steps: list[Step] = []
    node = first
    while len(steps) + 1 < MAX_CHAIN:
        step = _next(run, node)
        if step is None:
            break
        steps.append(step)
        node = step.node
    return steps


def calls(
    run: RunState, first: int, inputs: Mapping[InputName, Any], steps: list[Step]
) -> list[tuple[Any, tuple[Any, ...]]]:
    """The chain's calls: the first node's task, then `run_after` each step."""
    args, kwargs = _split(inputs)
    first_identifier = run.nodes[first].task_identifier
    chain: list[tuple[Any, tuple[Any, ...]]] = [
        (run_task, (first_identifier, args, kwargs))
    ]
    for step in steps:
        node = run.nodes[step.node]
        chain.append(
            (
                run_after,
                (
                    node.task_identifier,
                    dict(node.default_inputs),
                    step.feeds,
                    step.positional,
                ),
            )
        )
    return chain


def _method(run: RunState, i: int) -> bool:
    node = run.nodes[i]
    return (
        node.task_type == "method"
        and run.analysis.loop_of[i] < 0
        and not node.force_start_node
    )


def _next(run: RunState, a: int) -> Step | None:
    analysis = run.analysis
    if len({analysis.targets[k] for k in analysis.out_links[a]}) != 1:
        # Its outcome comes back with its chain's slice: the other nodes it
        # decides would wait for the nodes chained after it.
        return None
    for k in analysis.out_links[a]:
        j = analysis.targets[k]
        if not _method(run, j) or run.status[j] is not NodeStatus.PENDING:
            continue
        feeds = _feeds(run, a, j)
        if feeds is None:
            continue
        names = {*run.nodes[j].default_inputs, *(name for name, _ in feeds)}
        if not _numbered(names):
            continue  # the walker reports the gap, node by node
        return Step(j, feeds, sum(isinstance(name, int) for name in names))
    return None


def _numbered(names: Iterable[InputName]) -> bool:
    """Whether the positional (int) input names are 0, 1... without a gap."""
    positions = sorted(name for name in names if isinstance(name, int))
    return positions == list(range(len(positions)))


def _feeds(run: RunState, a: int, j: int) -> tuple[tuple[InputName, bool], ...] | None:
    """What the links into ``j`` set, if they all come from ``a`` and always fire."""
    analysis = run.analysis
    feeds: list[tuple[InputName, bool]] = []
    for k in sorted(analysis.in_links[j]):  # node_inputs' order, in one round
        link = run.links[k]
        if analysis.sources[k] != a or link.conditions or link.on_error:
            return None
        if link.map_all_data:
            feeds.append((_VALUE, False))
        for mapping in link.data_mapping:
            if mapping.source_output not in (None, _VALUE):
                return None
            feeds.append((mapping.target_input, mapping.source_output is None))
    return tuple(feeds)


def _split(inputs: Mapping[InputName, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    positional = sorted(name for name in inputs if isinstance(name, int))
    args = tuple(inputs[position] for position in positional)
    return args, {
        name: value for name, value in inputs.items() if isinstance(name, str)
    }
