"""Graph algorithms on index arrays: loops, a deterministic order, a cycle.

Nodes are positions ``0..n-1`` and link ``k`` goes from ``sources[k]`` to
``targets[k]``; ``in_links[i]`` and ``out_links[i]`` list node ``i``'s link
numbers.  Plain lists of ints, not records: the analysis of a 10,000-node graph
is a few passes over them, and none of this knows what a node or a link means
(that is `._analysis`' job).  Every algorithm is iterative, so a long chain
cannot overflow Python's recursion limit.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from typing import Any


def strongly_connected(
    n: int,
    targets: Sequence[int],
    out_links: Sequence[Sequence[int]],
) -> tuple[list[int], list[list[int]]]:
    """Each node's loop number (-1: in no loop), and the nodes of each loop.

    A loop is a strongly connected component of more than one node, or a node
    linked to itself.  Tarjan's algorithm: one depth-first pass, linear in
    nodes plus links.
    """
    # Tarjan's algorithm with an explicit stack of (node, next link to follow)
    # frames instead of recursion: the textbook version recurses once per node
    # of a path, and a 10,000-node chain would exceed the recursion limit.
    number = [-1] * n  # discovery order; -1: not visited yet
    # The smallest discovery number of a node still on the stack that i's
    # subtree links to: i roots a component when that is i itself.
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    loop_of = [-1] * n
    members: list[list[int]] = []
    counter = 0
    for root in range(n):
        if number[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            i, next_link = work[-1]
            if next_link == 0:  # first visit of i
                number[i] = low[i] = counter
                counter += 1
                stack.append(i)
                on_stack[i] = True
            ks = out_links[i]
            while next_link < len(ks):
                j = targets[ks[next_link]]
                next_link += 1
                if number[j] < 0:
                    # Descend into j; i's frame resumes at its next link when
                    # j's frame is popped.
                    work[-1] = (i, next_link)
                    work.append((j, 0))
                    break
                if on_stack[j]:
                    low[i] = min(low[i], number[j])
            else:
                # Every link of i followed: i is finished, which in the
                # recursive form is the return to its parent.
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[i])
                if low[i] == number[i]:
                    # i is the root of a component: pop it off the stack.
                    component = []
                    while True:
                        j = stack.pop()
                        on_stack[j] = False
                        component.append(j)
                        if j == i:
                            break
                    # A single node is a component of its own; it is a loop
                    # only if it links to itself.
                    looped = len(component) > 1 or any(
                        targets[k] == i for k in out_links[i]
                    )
                    if looped:
                        for j in component:
                            loop_of[j] = len(members)
                        members.append(component)
                continue
            # A child was pushed: its first visit happens on the next pass.
    return loop_of, members


def condensed_order(
    keys: Sequence[Any],
    sources: Sequence[int],
    targets: Sequence[int],
    loop_of: Sequence[int],
    members: Sequence[Sequence[int]],
) -> list[int]:
    """Kahn's algorithm over nodes and whole loops, smallest key first.

    ``keys[i]`` orders node ``i`` among the nodes that are ready together, so
    the order does not depend on the order of the source.  A loop counts as one
    node, ready when all links into it from outside are done, keyed by its
    smallest key; its nodes follow each other, by key.
    """
    n = len(keys)
    # Units: nodes outside loops keep their position; loop m becomes unit n + m.
    unit = [i if loop_of[i] < 0 else n + loop_of[i] for i in range(n)]
    missing = [0] * (n + len(members))
    for k, target in enumerate(targets):
        if unit[sources[k]] != unit[target]:
            missing[unit[target]] += 1
    inside = [sorted(group, key=keys.__getitem__) for group in members]

    def key(u: int) -> Any:
        return keys[u] if u < n else keys[inside[u - n][0]]

    ready = [(key(u), u) for u in range(n + len(members)) if u >= n or loop_of[u] < 0]
    ready = [item for item in ready if not missing[item[1]]]
    heapq.heapify(ready)
    out: list[list[int]] = [[] for _ in range(n)]
    for k, source in enumerate(sources):
        out[source].append(k)
    order: list[int] = []
    while ready:
        _, u = heapq.heappop(ready)
        group = [u] if u < n else inside[u - n]
        order.extend(group)
        for i in group:
            for k in out[i]:
                target = unit[targets[k]]
                if target != u:
                    missing[target] -= 1
                    if not missing[target]:
                        heapq.heappush(ready, (key(target), target))
    assert len(order) == n  # the condensation of any graph is acyclic
    return order


def find_cycle(
    n: int,
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
    usable: Sequence[bool],
) -> list[int] | None:
    """A cycle through the usable links, as a list of node positions, or None.

    Kahn's algorithm removes every node that is not upstream-reachable from a
    cycle; each remaining node has a remaining predecessor, so walking upstream
    from any of them must revisit a node: that repeat closes a cycle.
    """
    missing = [0] * n
    for k, target in enumerate(targets):
        if usable[k]:
            missing[target] += 1
    out: list[list[int]] = [[] for _ in range(n)]
    for k, source in enumerate(sources):
        if usable[k]:
            out[source].append(targets[k])
    todo = deque(i for i in range(n) if not missing[i])
    removed = [False] * n
    while todo:
        i = todo.popleft()
        removed[i] = True
        for target in out[i]:
            missing[target] -= 1
            if not missing[target]:
                todo.append(target)
    remaining = [i for i in range(n) if not removed[i]]
    if not remaining:
        return None
    seen: dict[int, int] = {}
    path: list[int] = []
    i = remaining[0]
    while i not in seen:
        seen[i] = len(path)
        path.append(i)
        i = next(
            sources[k] for k in in_links[i] if usable[k] and not removed[sources[k]]
        )
    cycle = path[seen[i] :][::-1]
    first = cycle.index(min(cycle))  # start where the source lists it first
    return cycle[first:] + cycle[:first]
