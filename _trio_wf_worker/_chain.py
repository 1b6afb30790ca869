"""A method node run right after its predecessor, in the same Dask task.

On Dask, the workflow engine submits a chain of method nodes at once
(``trio_wf.workflow._chains``): each node's call takes its predecessor's
result, on the worker that ran it (`._fused`), with no round trip to the
client.  Its inputs are made here, from that result, exactly as the walker
would make them.  Standard library only, as the rest of this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._tasks import run_task


def run_after(
    identifier: str,
    defaults: Mapping[Any, Any],
    feeds: Sequence[tuple[Any, bool]],
    positional: int,
    previous: tuple[int, Any, tuple[float, float]],
) -> tuple[int, Any, tuple[float, float]]:
    """Run method task ``identifier`` on its defaults and its predecessor's result.

    ``previous`` is what `run_task` returned for the predecessor, a method node
    whose only output is ``return_value``.  Each feed ``(name, whole)`` sets
    input ``name`` to that value, or, if ``whole``, to the predecessor's whole
    outputs ``{"return_value": value}``; in the walker's order, so a later one
    wins.  The first ``positional`` inputs are the integer names 0, 1...
    """
    value = previous[1]
    inputs = dict(defaults)
    for name, whole in feeds:
        inputs[name] = {"return_value": value} if whole else value
    args = tuple(inputs.pop(position) for position in range(positional))
    return run_task(identifier, args, inputs)  # type: ignore[no-any-return]
