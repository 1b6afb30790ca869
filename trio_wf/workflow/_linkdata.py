"""What data flows along a link and into a node.

Pure helpers for the walker (`._walker.Run`): whether a link's conditions hold,
what a failed node sends along its ``on_error`` links, and a node's inputs from
its default inputs and the data its links delivered.  They read what they are
given and keep no state; recording a link's error is the walker's job.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from _trio_wf_worker._ewoks_tasks import plain_values

from ._cache import Provenance
from ._errors import TaskInputError
from ._graph import InputName, Link, NodeId, describe_link
from ._tasks import PPFDICT


def conditions_hold(
    k: int,
    link: Link,
    outputs: Mapping[str, Any],
    else_values: Sequence[tuple[Any, ...] | None],
) -> bool:
    """Whether the conditions of link ``k`` hold for its source's ``outputs``.

    ``else_values`` is the link's entry of `GraphAnalysis.else_values`: per
    condition, ``None``, or the values an else condition must differ from.
    Raises `TaskInputError` for a missing output, and whatever an uncomparable
    value raises.  ewokscore outputs are tested by value, not by reference.
    """
    outputs = plain_values(outputs)
    for condition, others in zip(link.conditions, else_values, strict=True):
        value = output_value(outputs, condition.source_output, k, link, "tests")
        if others is None:
            if not equal(value, condition.value):
                return False
        elif any(equal(value, other) for other in others):
            return False
    return True


def failure_data(node_id: NodeId, exc: BaseException) -> dict[str, Any]:
    """What the ``on_error`` links of failed node ``node_id`` carry."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"node_id": node_id, "exception": exc, "traceback": text}


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
        f"{describe_link(k, link.source, link.target)} {verb} output {name!r} "
        f"of node {link.source!r}, which has outputs {sorted(outputs)}"
    )
    raise TaskInputError(msg)


def equal(value: Any, expected: Any) -> bool:
    """``value == expected`` as a bool; an uncomparable value raises.

    Unlike the analysis, which treats such a value as unequal, the walker
    reports the error as a failure of the link's target.
    """
    result = value == expected
    return bool(result)
