"""trio_wf.workflow: run ewoks workflow graphs on trio_wf's worker processes.

`load_graph` reads and validates a graph; `execute_graph` (sync) and
`aexecute_graph` (Trio) run it, each node's task in a worker;
`open_graph_run` runs it in the background and streams its events.  See
:doc:`/workflows` for the graph format and the execution semantics.
"""

from .._util import fixup_module_metadata as _fixup_module_metadata
from ._errors import (
    GraphValidationError as GraphValidationError,
    LoopLimitError as LoopLimitError,
    TaskInputError as TaskInputError,
    WorkflowExecutionError as WorkflowExecutionError,
)
from ._events import NodeEvent as NodeEvent, NodeStatus as NodeStatus
from ._execute import (
    ExecuteOptions as ExecuteOptions,
    aexecute_graph as aexecute_graph,
    execute_graph as execute_graph,
)
from ._graph import (
    Condition as Condition,
    DataMapping as DataMapping,
    Graph as Graph,
    GraphAnalysis as GraphAnalysis,
    InputName as InputName,
    Link as Link,
    Node as Node,
    NodeId as NodeId,
)
from ._graph_run import GraphRun as GraphRun, open_graph_run as open_graph_run
from ._limits import (
    MAX_GRAPH_BYTES as MAX_GRAPH_BYTES,
    MAX_GRAPH_DEPTH as MAX_GRAPH_DEPTH,
)
from ._load import load_graph as load_graph

__all__ = (
    "MAX_GRAPH_BYTES",
    "MAX_GRAPH_DEPTH",
    "Condition",
    "DataMapping",
    "ExecuteOptions",
    "Graph",
    "GraphAnalysis",
    "GraphRun",
    "GraphValidationError",
    "InputName",
    "Link",
    "LoopLimitError",
    "Node",
    "NodeEvent",
    "NodeId",
    "NodeStatus",
    "TaskInputError",
    "WorkflowExecutionError",
    "aexecute_graph",
    "execute_graph",
    "load_graph",
    "open_graph_run",
)

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
