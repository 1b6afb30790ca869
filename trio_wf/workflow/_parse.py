"""Turn an ewoks graph document (schema 1.0-1.2) into `Node` and `Link` records.

Every check here is structural and imports nothing: the types of the attributes,
duplicate ids, dangling links, forbidden combinations, task types and the syntax
of task identifiers.  The caller's document is only read.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from .._util import quote
from ._errors import GraphValidationError
from ._graph import (
    Condition,
    DataMapping,
    InputName,
    Invalid,
    Link,
    Node,
    NodeId,
    describe_link,
    normalise_id,
    normalise_name,
)
from ._identifiers import (
    SUPPORTED_TASK_TYPES,
    UNSUPPORTED_TASK_TYPES,
    absolute_identifier,
    identifier_problem,
    is_short_name,
    script_argv,
)

SCHEMA_VERSIONS = ("1.0", "1.1", "1.2")
_NODE_KEYS = frozenset(
    {
        "id",
        "label",
        "task_type",
        "task_identifier",
        "default_inputs",
        "force_start_node",
        "conditions_else_value",
        "default_error_node",
    }
)
# Before task_type/task_identifier, the task type was the key: {"method": "f"}.
# The odd one out is "task": it named a task class that ewokscore generates at
# run time, which today's schema calls task_type "generated".  Mapping it means
# such a node is refused as an unsupported task type (with the list of the
# supported ones), not as a node without a task.
_DEPRECATED_TASK_KEYS = {
    "class": "class",
    "method": "method",
    "ppfmethod": "ppfmethod",
    "ppfport": "ppfport",
    "script": "script",
    "notebook": "notebook",
    "task": "generated",
}
_LINK_KEYS = frozenset(
    {
        "source",
        "target",
        "data_mapping",
        "map_all_data",
        "conditions",
        "on_error",
        "required",
        "sub_source",
        "sub_target",
    }
)


def check_header(document: Any) -> tuple[Mapping[str, Any], str]:
    """The ``graph`` attributes and schema version of a graph document."""
    if not isinstance(document, Mapping):
        msg = f"a graph must be a JSON object, got {type(document).__name__}"
        raise GraphValidationError(msg)
    attributes = document.get("graph", {})
    if not isinstance(attributes, Mapping):
        msg = f"'graph' must be an object, got {type(attributes).__name__}"
        raise GraphValidationError(msg)
    version = attributes.get("schema_version", SCHEMA_VERSIONS[-1])
    # YAML, and JSON written by hand or by older ewoks, give the version as a
    # number: 1.1 reads back as the float 1.1, whose str() is "1.1".  (A
    # version such as "1.10" could not survive that, but ewoks has none.)
    version = str(version) if isinstance(version, float) else version
    if version not in SCHEMA_VERSIONS:
        msg = (
            f"unsupported schema_version {quote(version)}: trio_wf reads ewoks graphs "
            f"of schema {', '.join(SCHEMA_VERSIONS)}"
        )
        raise GraphValidationError(msg)
    return attributes, version


def graph_fields(
    document: Mapping[str, Any], attributes: Mapping[str, Any], version: str
) -> dict[str, Any]:
    """The `Graph` fields besides nodes, links and analysis."""
    return {
        "id": _graph_text(attributes, "id"),
        "label": _graph_text(attributes, "label"),
        "schema_version": version,
        "extra": {
            key: value
            for key, value in attributes.items()
            if key not in ("id", "label", "schema_version")
        },
        "top_level_extra": {
            key: value
            for key, value in document.items()
            if key not in ("graph", "nodes", "links")
        },
    }


def _graph_text(attributes: Mapping[str, Any], key: str) -> str | None:
    """The graph's id or label as a string: numbers are written out."""
    value = attributes.get(key)
    if value is None or isinstance(value, str):
        return value
    # Not str() of anything: a list would read as its repr, and an int of
    # 5000 digits cannot be written out at all.
    if isinstance(value, float) or (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() <= 64
    ):
        return str(value)
    msg = f"the graph's {key} must be a string, got {quote(value)}"
    raise GraphValidationError(msg)


def list_of(document: Mapping[str, Any], key: str) -> list[Any]:
    """``document[key]``, which must be a list (absent or null: empty)."""
    try:
        return optional_list(document, key, repr(key))
    except Invalid as exc:
        raise GraphValidationError(str(exc)) from None


def optional_list(
    item: Mapping[str, Any], key: str, where: str | None = None
) -> list[Any]:
    """``item[key]``, which must be a list (absent or null: empty); messages
    call it ``where`` (by default, its key)."""
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        msg = f"{where or key} must be a list, got {type(value).__name__}"
        raise Invalid(msg)
    return value


def node_id(value: Any, where: str) -> NodeId:
    """`normalise_id`, raising `GraphValidationError` that says ``where``."""
    try:
        return normalise_id(value)
    except Invalid as exc:
        msg = f"{where} {exc}"
        raise GraphValidationError(msg) from None


def input_name(value: Any, where: str) -> InputName:
    """`normalise_name`, raising `GraphValidationError` that says ``where``."""
    try:
        return normalise_name(value)
    except Invalid as exc:
        msg = f"{where} {exc}"
        raise GraphValidationError(msg) from None


def flag(item: Mapping[str, Any], key: str) -> bool:
    """``item[key]``, which must be true or false (absent or null: false)."""
    value = item.get(key, False)
    if value is None or value is False or value is True:
        return bool(value)
    msg = f"{key} must be true or false, got {quote(value)}"
    raise Invalid(msg)


def parse_node(item: Any, position: int, base_dir: str | None) -> Node:
    if not isinstance(item, Mapping):
        msg = f"nodes[{position}] must be an object, got {type(item).__name__}"
        raise GraphValidationError(msg)
    if "id" not in item:
        msg = f"nodes[{position}] has no id"
        raise GraphValidationError(msg)
    nid = node_id(item["id"], f"nodes[{position}].id")
    try:
        return _node(item, nid, base_dir)
    except Invalid as exc:
        msg = f"node {quote(nid)}: {exc}"
        raise GraphValidationError(msg, node_id=nid) from None


def _node(item: Mapping[str, Any], nid: NodeId, base_dir: str | None) -> Node:
    old_keys = [key for key in _DEPRECATED_TASK_KEYS if key in item]
    if "task_type" in item and not old_keys:
        task_type = item["task_type"]
        identifier = item.get("task_identifier")
    elif "task_type" in item:
        msg = f"has both task_type and {old_keys[0]!r}; keep task_type"
        raise Invalid(msg)
    elif len(old_keys) == 1:
        task_type = _DEPRECATED_TASK_KEYS[old_keys[0]]
        identifier = item[old_keys[0]]
    elif old_keys:
        msg = f"has several task keys {old_keys}; use task_type instead"
        raise Invalid(msg)
    else:
        msg = "needs a task_type and task_identifier"
        raise Invalid(msg)
    if task_type in UNSUPPORTED_TASK_TYPES:
        msg = (
            f"task_type {quote(task_type)} is not supported by trio_wf yet "
            f"(supported: {', '.join(SUPPORTED_TASK_TYPES)})"
        )
        raise Invalid(msg)
    if task_type not in SUPPORTED_TASK_TYPES:
        known = SUPPORTED_TASK_TYPES + UNSUPPORTED_TASK_TYPES
        msg = f"unknown task_type {quote(task_type)}; expected one of {known}"
        raise Invalid(msg)
    argv: tuple[str, ...] | None = None
    if task_type == "ppfport":
        identifier = None  # the identity: nothing to import, whatever is written
    elif task_type == "script":
        parsed = script_argv(identifier, base_dir)
        if isinstance(parsed, str):
            raise Invalid(parsed)
        argv = parsed
        if not isinstance(identifier, str):
            identifier = shlex.join(argv)
    elif not (task_type == "class" and is_short_name(identifier)):
        problem = identifier_problem(identifier)
        if problem is not None:
            raise Invalid(problem)
        assert isinstance(identifier, str)
        identifier = absolute_identifier(identifier, base_dir)

    label = item.get("label")
    if label is not None and not isinstance(label, str):
        msg = f"label must be a string, got {quote(label)}"
        raise Invalid(msg)
    default_inputs: dict[InputName, Any] = {}
    for i, entry in enumerate(optional_list(item, "default_inputs")):
        if not (isinstance(entry, Mapping) and "name" in entry and "value" in entry):
            msg = f'default_inputs[{i}] must be {{"name": ..., "value": ...}}'
            raise Invalid(msg)
        try:
            name = normalise_name(entry["name"])
        except Invalid as exc:
            msg = f"default_inputs[{i}].name {exc}"
            raise Invalid(msg) from None
        default_inputs[name] = entry["value"]
    return Node(
        id=nid,
        label=label,
        task_type=task_type,
        task_identifier=identifier,
        default_inputs=default_inputs,
        force_start_node=flag(item, "force_start_node"),
        conditions_else_value=item.get("conditions_else_value"),
        default_error_node=flag(item, "default_error_node"),
        argv=argv,
        extra={
            key: value
            for key, value in item.items()
            if key not in _NODE_KEYS and key not in _DEPRECATED_TASK_KEYS
        },
    )


def parse_link(
    item: Any, index: int, version: str, nodes: Mapping[NodeId, Node]
) -> Link:
    if not isinstance(item, Mapping):
        msg = f"links[{index}] must be an object, got {type(item).__name__}"
        raise GraphValidationError(msg, link_index=index)
    for end in ("source", "target"):
        if end not in item:
            msg = f"links[{index}] has no {end}"
            raise GraphValidationError(msg, link_index=index)
    source = node_id(item["source"], f"links[{index}].source")
    target = node_id(item["target"], f"links[{index}].target")
    try:
        return _link(item, source, target, version, nodes)
    except Invalid as exc:
        msg = f"{describe_link(index, source, target)}: {exc}"
        raise GraphValidationError(msg, link_index=index) from None


def _link(
    item: Mapping[str, Any],
    source: NodeId,
    target: NodeId,
    version: str,
    nodes: Mapping[NodeId, Node],
) -> Link:
    for end, nid in (("source", source), ("target", target)):
        if nid not in nodes:
            msg = f"{end} {quote(nid)} is not a node of the graph"
            raise Invalid(msg)
    mappings = []
    for i, entry in enumerate(optional_list(item, "data_mapping")):
        if not isinstance(entry, Mapping) or "target_input" not in entry:
            msg = f"data_mapping[{i}] must have a target_input"
            raise Invalid(msg)
        output = entry.get("source_output")
        if output is not None and not isinstance(output, str):
            msg = f"data_mapping[{i}].source_output must be a string or null"
            raise Invalid(msg)
        try:
            name = normalise_name(entry["target_input"])
        except Invalid as exc:
            msg = f"data_mapping[{i}].target_input {exc}"
            raise Invalid(msg) from None
        mappings.append(DataMapping(source_output=output, target_input=name))
    conditions = []
    for i, entry in enumerate(optional_list(item, "conditions")):
        if not isinstance(entry, Mapping) or not isinstance(
            entry.get("source_output"), str
        ):
            msg = f"conditions[{i}] must have a source_output name"
            raise Invalid(msg)
        if "value" not in entry:
            msg = f"conditions[{i}] must have a value"
            raise Invalid(msg)
        conditions.append(Condition(entry["source_output"], entry["value"]))
    map_all_data = flag(item, "map_all_data")
    on_error = flag(item, "on_error")
    if map_all_data and mappings:
        msg = "map_all_data cannot be combined with data_mapping"
        raise Invalid(msg)
    if on_error and conditions:
        msg = "on_error cannot be combined with conditions"
        raise Invalid(msg)
    required = item.get("required")
    if required is not None and not isinstance(required, bool):
        msg = f"required must be true, false or null, got {quote(required)}"
        raise Invalid(msg)
    if required is False and version in ("1.0", "1.1"):
        required = None  # before 1.2, false meant "not set": let analysis decide
    return Link(
        source=source,
        target=target,
        data_mapping=tuple(mappings),
        map_all_data=map_all_data,
        conditions=tuple(conditions),
        on_error=on_error,
        required=required,
        sub_source=_sub_reference(item, "sub_source"),
        sub_target=_sub_reference(item, "sub_target"),
        extra={key: value for key, value in item.items() if key not in _LINK_KEYS},
    )


def _sub_reference(item: Mapping[str, Any], key: str) -> NodeId | None:
    value = item.get(key)
    if value is None:
        return None
    try:
        return normalise_id(value)
    except Invalid as exc:
        msg = f"{key} {exc}"
        raise Invalid(msg) from None
