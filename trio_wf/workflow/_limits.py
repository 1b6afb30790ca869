"""The limits on a graph, in one place (the Failure semantics page lists them).

A graph may come from anyone, so every piece of work the engine does on it
before and between tasks must be bounded by its size, and its size must be
bounded too: by the text read, the values it holds (counting a YAML alias or
a shared object each time it appears) and the nodes and links it flattens to.
Values inside a graph never size the work: a position is a small int.  Each
limit is read from this module when it is checked, so a test can lower it.

This module imports nothing: the normalisers of `._graph` read it too.
"""

from __future__ import annotations

#: Largest graph text or file accepted, in bytes; also the most text read for
#: one graph, its sub-graph files included (each read once).
MAX_GRAPH_BYTES = 32 * 1024 * 1024
#: Deepest nesting of lists and dicts accepted in graph text, files or dicts.
MAX_GRAPH_DEPTH = 100
#: Most values (list items, dict entries, and the documents themselves) a graph
#: may hold, counting a YAML alias, a shared object or a sub-graph file each
#: time it is used.  JSON spends at least a byte a value, so text under
#: `MAX_GRAPH_BYTES` can only reach it through aliases.
MAX_GRAPH_VALUES = MAX_GRAPH_BYTES
#: Most nodes and links a graph may have once its sub-graphs are flattened and
#: its links to and from graph nodes and default error links are made.
MAX_GRAPH_ELEMENTS = 1_000_000
#: How deep graph nodes may nest.
MAX_NESTING = 20
#: The largest position (int input name): positional inputs are 0 to this.
MAX_POSITION = 999
