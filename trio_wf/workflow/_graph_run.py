"""`open_graph_run`: a run in the background, its events as an async iterator."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, final

import trio

from ._events import NodeEvent
from ._execute import ExecuteOptions, aexecute_graph
from ._load import GraphSource

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover, tested on 3.11+
    from typing_extensions import Unpack

if sys.version_info < (3, 11):  # pragma: no cover, tested on 3.11+
    # A dependency of trio on Python 3.10.
    from exceptiongroup import (  # type: ignore[import-not-found, unused-ignore]
        BaseExceptionGroup,
    )


@final
class GraphRun:
    """A run started by `open_graph_run`.

    Attributes:
        events: the run's `NodeEvent`\\ s, in order, as a
            `trio.MemoryReceiveChannel`: ``async for event in run.events``
            ends when the run does.  Events are buffered without limit (the
            walker never waits for a slow reader), and are dropped when
            nobody reads them.
    """

    def __init__(self, events: trio.MemoryReceiveChannel[NodeEvent]) -> None:
        self.events = events
        self._done = False
        self._result: dict[Any, Any] = {}
        self._error: Exception | None = None

    @property
    def result(self) -> dict[Any, Any]:
        """What `aexecute_graph` returned; raises what it raised.

        Raises:
            RuntimeError: the run has not finished yet: read `events` to its
                end, or leave the ``async with`` block, first.
        """
        if not self._done:
            msg = (
                "the run has not finished: read run.events to the end, or "
                "leave the async with block, before reading run.result"
            )
            raise RuntimeError(msg)
        if self._error is not None:
            raise self._error
        return self._result


@asynccontextmanager
async def open_graph_run(
    graph: GraphSource, **options: Unpack[ExecuteOptions]
) -> AsyncIterator[GraphRun]:
    """Run a graph in the background; read its events as they come.

    ::

        async with open_graph_run(graph, max_workers=4) as run:
            async for event in run.events:
                print(event.kind, event.node_id)
        print(run.result)

    Leaving the block waits for the run to finish; an exception in the block,
    or a cancellation of it, cancels the run (its running tasks are killed).
    The run's error (such as `WorkflowExecutionError` or `TimeoutError`) is
    raised by `GraphRun.result`, and when the block is left, unless the block
    itself raised.

    Args:
        graph: what `aexecute_graph` accepts.
        options: the keyword arguments of `aexecute_graph`.  An ``on_event``
            callback is called too, before the event is queued.
    """
    send, receive = trio.open_memory_channel[NodeEvent](math.inf)
    run = GraphRun(receive)
    callback = options.pop("on_event", None)

    def on_event(event: NodeEvent) -> None:
        if callback is not None:
            callback(event)
        try:
            send.send_nowait(event)
        except trio.BrokenResourceError:
            pass  # the reader closed the channel: it wants no more events

    options["on_event"] = on_event

    async def execute() -> None:
        with send:
            try:
                run._result = await aexecute_graph(graph, **options)
            except Exception as exc:  # raised by .result and on exit instead
                run._error = exc
            finally:
                run._done = True

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(execute)
            with receive:
                yield run
    except BaseExceptionGroup as group:
        # execute() raises nothing but Cancelled, which the nursery absorbs:
        # the one exception is the block's own, so raise it as it was.
        if len(group.exceptions) != 1:  # pragma: no cover, see above
            raise
        raise group.exceptions[0] from group.exceptions[0].__cause__
    if run._error is not None:
        raise run._error
