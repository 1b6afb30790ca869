"""Loops: running a strongly connected component of the graph in rounds.

A loop is decided as a whole, once the links into it from outside have settled
(the walker, `._walker`, starts it then).  Round 1 runs the nodes those links
fired, and forced start nodes; each later round runs, side by side, the nodes
the previous round fired.  Inside a loop a node runs when its required links
have fired at some round, not necessarily the last: data from older rounds
stays, and newer data wins.  The loop ends when a round fires nothing, or
fails when a node would run more than ``max_iterations`` times: a condition
that never turns false must not hang the run.  Settling the links out of the
loop is, again, the walker's job.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

from .._util import quote, quote_items
from ._errors import LoopLimitError
from ._events import NodeStatus
from ._graph import InputName
from ._state import RunState


async def run_rounds(state: RunState, number: int) -> None:
    """Run loop ``number`` in rounds, then decide its members that never ran."""
    analysis = state.analysis
    loop = analysis.loop_info[number]
    received = state.received
    # Round 1: the nodes that links from outside fired, and forced starts.
    triggered = [
        i
        for i in loop.nodes
        if received[i]
        or state.link_errors[i]
        or (state.nodes[i].force_start_node and not state.blocked[i])
    ]
    round_number = 0
    while triggered:
        round_number += 1
        running = [i for i in triggered if _runs_in_loop(state, i, round_number)]
        over = [i for i in running if state.runs[i] >= state.max_iterations]
        if over:
            _fail_loop(state, loop.nodes, over[0])
            break
        # Inputs first, for every node of the round: a node that finishes
        # early must not feed another node of the same round.
        prepared = [(i, state.prepare(i)) for i in running]
        fired: set[int] = set()
        async with trio.open_nursery() as nursery:
            for i, inputs in prepared:
                nursery.start_soon(
                    _run_loop_node, state, i, inputs, number, round_number, fired
                )
        if any(state.unhandled(i) for i in running):
            break
        triggered = [i for i in loop.nodes if i in fired]
    _decide_never_run(state, number, loop.nodes)


def _decide_never_run(state: RunState, number: int, members: tuple[int, ...]) -> None:
    """Members that never ran are skipped if a failure upstream, inside or
    outside the loop, kept them from running; else not triggered."""
    analysis = state.analysis
    status = state.status
    skipped = deque(
        i
        for i in members
        if status[i] is NodeStatus.FAILED
        or (status[i] is NodeStatus.PENDING and state.blocked[i])
    )
    for i in skipped:
        if status[i] is NodeStatus.PENDING:
            status[i] = NodeStatus.SKIPPED
    while skipped:
        for k in analysis.out_links[skipped.popleft()]:
            target = analysis.targets[k]
            if analysis.loop_of[target] == number and (
                status[target] is NodeStatus.PENDING and not state.links[k].on_error
            ):
                status[target] = NodeStatus.SKIPPED
                skipped.append(target)
    for i in members:
        if status[i] is NodeStatus.PENDING:
            status[i] = NodeStatus.NOT_TRIGGERED


def _runs_in_loop(state: RunState, i: int, round_number: int) -> bool:
    """Whether a triggered node runs: its required links fired, some time."""
    if state.link_errors[i]:
        return True
    if round_number == 1 and state.nodes[i].force_start_node:
        return not state.blocked[i]
    received = state.received[i]
    required = state.analysis.required
    return all(k in received for k in state.analysis.in_links[i] if required[k])


async def _run_loop_node(
    state: RunState,
    i: int,
    inputs: dict[InputName, Any] | Exception,
    number: int,
    round_number: int,
    fired: set[int],
) -> None:
    await state.execute(i, inputs)
    state.last_round[i] = round_number
    analysis = state.analysis
    status = state.status[i]
    key = state.keys.get(i)
    else_memo: dict[str, bool] = {}
    for k in analysis.out_links[i]:
        target = analysis.targets[k]
        data = state.link_data(i, k, status, else_memo)
        if data is not None and state.cache is not None:
            state.received_keys[target][k] = key
        if analysis.loop_of[target] == number:
            if data is not None:
                state.received[target][k] = (round_number, data)
            if data is not None or k in state.link_errors[target]:
                fired.add(target)
        elif data is not None:  # leaves the loop: settles when it ends
            state.received[target][k] = (0, data)


def _fail_loop(state: RunState, members: tuple[int, ...], i: int) -> None:
    ids = [state.nodes[j].id for j in members]
    error = LoopLimitError(
        f"loop {quote_items(ids)} did not end: node {quote(state.nodes[i].id)} "
        f"would run more than max_iterations={state.max_iterations} times; check the "
        f"conditions of its links, or raise max_iterations",
        nodes=tuple(ids),
        max_iterations=state.max_iterations,
    )
    state.status[i] = NodeStatus.FAILED
    state.outputs.pop(i, None)
    state.keys.pop(i, None)
    state.failures[i] = error
    state.always_unhandled.add(i)
    state.emit("error", i, None, 0.0, error)
