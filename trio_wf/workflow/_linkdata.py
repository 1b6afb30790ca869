"""What data flows along a link and into a node.

Pure helpers for the walker (`._walker.Run`): whether a link's conditions hold,
what a failed node sends along its ``on_error`` links, and a node's inputs from
its default inputs and the data its links delivered.  They read what they are
given and keep no state; recording a link's error is the walker's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from _trio_wf_worker._ewoks_tasks import plain_values

from .._util import quote, quote_items, shorten
from ._cache import Provenance
from ._errors import TaskInputError
from ._graph import InputName, Link, NodeId, describe_link
from ._tasks import PPFDICT
from ._tracebacks import format_user_traceback


def conditions_hold(
    k: int,
    link: Link,
    outputs: Mapping[str, Any],
    else_values: Sequence[tuple[Any, ...] | None],
    else_memo: dict[str, bool] | None = None,
) -> bool:
    """Whether the conditions of link ``k`` hold for its source's ``outputs``.

    ``else_values`` is the link's entry of `GraphAnalysis.else_values`: per
    condition, ``None``, or the values an else condition must differ from.
    ``else_memo``, shared by the links of one source for one set of outputs,
    keeps what an else condition found per output: the same answer for every
    else link, worked out once.  Raises `TaskInputError` for a missing output
    or a value that cannot be compared (its error is the ``__cause__``).
    ewokscore outputs are tested by value, not by reference.
    """
    outputs = plain_values(outputs)
    for condition, others in zip(link.conditions, else_values, strict=True):
        name = condition.source_output
        value = output_value(outputs, name, k, link, "tests")
        try:
            if others is None:
                if not equal(value, condition.value):
                    return False
                continue
            if else_memo is not None and name in else_memo:
                holds = else_memo[name]
            else:
                holds = not any(equal(value, other) for other in others)
                if else_memo is not None:
                    else_memo[name] = holds
        except Exception as exc:
            msg = (
                f"{describe_link(k, link.source, link.target)} cannot compare "
                f"output {quote(name)} of node {quote(link.source)}, "
                f"{quote(value)}: {type(exc).__name__}: {shorten(str(exc), 500)}"
            )
            raise TaskInputError(msg) from exc
        if not holds:
            return False
    return True


#: ewoksppf's names for a failure, in results and along ``on_error`` links.
WORKFLOW_EXCEPTION = "WorkflowException"
WORKFLOW_EXCEPTION_INSTANCE = "WorkflowExceptionInstance"


def failure_data(
    node_id: NodeId, exc: BaseException, inputs: Mapping[InputName, Any]
) -> dict[Any, Any]:
    """What the ``on_error`` links of failed node ``node_id`` carry.

    What ewoksppf passes: the inputs the failed task was given, then
    ``WorkflowException`` and ``WorkflowExceptionInstance`` (see
    `ppf_failure`); then trio_wf's own ``node_id``, ``exception`` and
    ``traceback`` (the formatted text), since ewoksppf's say nothing of
    which node failed.
    """
    ppf = ppf_failure(exc)
    text = "".join(ppf[WORKFLOW_EXCEPTION]["traceBack"])
    return {**inputs, **ppf, "node_id": node_id, "exception": exc, "traceback": text}


def ppf_failure(exc: BaseException) -> dict[str, Any]:
    """A failure as ewoksppf reports it: ``WorkflowException``, a dict of the
    ``errorMessage`` and the ``traceBack`` (lines of text), and the exception
    itself as ``WorkflowExceptionInstance``."""
    # The task's own frames: the engine's say nothing about what went wrong.
    lines = format_user_traceback(exc).splitlines(keepends=True)
    return {
        WORKFLOW_EXCEPTION: {"errorMessage": str(exc), "traceBack": lines},
        WORKFLOW_EXCEPTION_INSTANCE: exc,
    }


def node_inputs(
    defaults: Mapping[InputName, Any],
    received: Mapping[int, tuple[int, Mapping[str, Any]]],
    links: Sequence[Link],
    provenance: dict[InputName, Provenance] | None = None,
    received_keys: Mapping[int, str | None] | None = None,
) -> dict[InputName, Any]:
    """Default inputs (with ``inputs=`` applied), then link data: older rounds
    first, then in link order, so the latest value of an input wins.

    ``received`` maps the number of each link that fired to its (round, data).
    With ``provenance``, also record where each input came from (the
    cache key's ingredients): its value, or the key of the link's data
    (from ``received_keys``, by link number).
    """
    inputs: dict[InputName, Any] = dict(defaults)
    if provenance is not None:
        provenance.update((name, ("value", v)) for name, v in inputs.items())
    if not received:
        return inputs
    for k in sorted(received, key=lambda k: (received[k][0], k)):
        link = links[k]
        outputs = received[k][1]
        key = None if received_keys is None else received_keys.get(k)
        if link.map_all_data:
            inputs.update(outputs)
            if provenance is not None:
                provenance.update(
                    (name, ("link", key, name) if key else ("value", value))
                    for name, value in outputs.items()
                )
        for mapping in link.data_mapping:
            name, output = mapping.target_input, mapping.source_output
            if output is None:
                inputs[name] = dict(outputs)
            else:
                inputs[name] = output_value(outputs, output, k, link, "maps")
            if provenance is not None:
                provenance[name] = (
                    ("link", key, output) if key else ("value", inputs[name])
                )
    return inputs


def output_value(
    outputs: Mapping[str, Any], name: str, k: int, link: Link, verb: str
) -> Any:
    """Output ``name``, looked up in ``_ppfdict`` too (ppf tasks output only that)."""
    if name in outputs:
        return outputs[name]
    ppfdict = outputs.get(PPFDICT)
    if isinstance(ppfdict, Mapping) and name in ppfdict:
        return ppfdict[name]
    msg = (
        f"{describe_link(k, link.source, link.target)} {verb} output {quote(name)} "
        f"of node {quote(link.source)}, which has outputs {quote_items(outputs)}"
    )
    raise TaskInputError(msg)


def equal(value: Any, expected: Any) -> bool:
    """``value == expected`` as a bool; an uncomparable value raises.

    Unlike the analysis, which treats such a value as unequal, the walker
    reports the error as a failure of the link's target.
    """
    result = value == expected
    return bool(result)
