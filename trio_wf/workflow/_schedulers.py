"""ewoksdask's ``scheduler`` and ``scheduler_options``, mapped to trio_wf's backends.

ewoksdask runs a graph on ``scheduler=None`` (its default: multiprocessing),
``"sequential"``, ``"multithreading"``, ``"multiprocessing"``, ``"cluster"`` (a
new Dask ``LocalCluster``) or the address of a Dask scheduler, and passes
``scheduler_options`` to what it runs.  `from_ewoksdask` maps each to one of
our backends, with the options that mean the same, and refuses the others
with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._util import quote

#: The kind of backend that is a Dask cluster (`trio_wf.open_dask_context`).
DASK: Final = "dask"

#: The start methods of worker processes, as ewoksppf and ewoksdask name them.
START_METHODS: Final = ("spawn", "forkserver", "fork")
# open_dask_context's keywords that a scheduler_options mapping may carry, for
# a private cluster and for a scheduler address; the rest of a "cluster"
# mapping goes to LocalCluster, as ewoksdask's Client(**options) does.
_CLUSTER_KEYS = ("n_workers", "security", "timeout", "init")
_ADDRESS_KEYS = ("security", "timeout", "connect_timeout", "insecure", "init")


@attrs.frozen
class Backend:
    """A backend to open for a run, and the options that came with its name.

    Attributes:
        kind: a worker type, ``"thread"``, ``"sequential"`` or `DASK`.
        max_workers: ewoksdask's ``scheduler_options["num_workers"]``, if given.
        dask: the keywords of `trio_wf.open_dask_context`, for `DASK`.
    """

    kind: str
    max_workers: int | None = None
    dask: Mapping[str, Any] = attrs.field(factory=dict)


def from_ewoksdask(scheduler: Any, options: Mapping[str, Any] | None) -> Backend:
    """The backend ewoksdask's ``scheduler`` and ``scheduler_options`` name.

    Raises:
        ValueError: a scheduler or an option with no trio_wf equivalent; the
            message says why.
        TypeError: ``scheduler_options`` is not a mapping.
    """
    checked: object = options
    if checked is not None and not isinstance(checked, Mapping):
        msg = f"scheduler_options must be a dict, got {type(checked).__name__}"
        raise TypeError(msg)
    rest = dict(options or {})
    if scheduler in (None, "multiprocessing"):
        context = rest.pop("context", "spawn")
        if context not in START_METHODS:
            _refuse(
                f"context={quote(context)}", f"the start methods are {START_METHODS}"
            )
        # ewoksdask's default; each node is one job here, nothing to chunk.
        if rest.pop("chunksize", 1) != 1:
            _refuse("chunksize", "trio_wf sends each node to a worker on its own")
        return Backend(context, _num_workers(rest, scheduler))
    if scheduler == "multithreading":
        return Backend("thread", _num_workers(rest, scheduler))
    if scheduler == "sequential":
        _no_more(rest, scheduler, ())
        return Backend("sequential")
    if scheduler == "cluster":
        dask = {key: rest.pop(key) for key in _CLUSTER_KEYS if key in rest}
        if rest:
            dask["cluster_options"] = rest
        return Backend(DASK, dask=dask)
    if isinstance(scheduler, str) and ":" in scheduler:
        dask = {key: rest.pop(key) for key in _ADDRESS_KEYS if key in rest}
        _no_more(rest, "a scheduler address", _ADDRESS_KEYS)
        return Backend(DASK, dask={"address": scheduler, **dask})
    msg = (
        f"scheduler={quote(scheduler)} has no trio_wf equivalent: ewoksdask's "
        "are None, 'multiprocessing', 'multithreading', 'sequential', 'cluster' "
        "or the address of a Dask scheduler ('tls://host:8786')"
    )
    raise ValueError(msg)


def _num_workers(rest: dict[str, Any], scheduler: object) -> int | None:
    number: object = rest.pop("num_workers", None)
    _no_more(rest, scheduler, ("num_workers",))
    if number is None:
        return None
    if type(number) is not int or number < 1:
        msg = (
            f"scheduler_options num_workers must be a positive int, got {quote(number)}"
        )
        raise ValueError(msg)
    return number


def _no_more(
    rest: Mapping[str, Any], scheduler: object, accepted: tuple[str, ...]
) -> None:
    if rest:
        what = scheduler if isinstance(scheduler, str) else "multiprocessing"
        known = ", ".join(accepted) or "none"
        _refuse(
            ", ".join(sorted(rest)),
            f"the options trio_wf takes for {what} are: {known}",
        )


def _refuse(option: str, reason: str) -> None:
    msg = f"scheduler_options {option}: no trio_wf equivalent ({reason})"
    raise ValueError(msg)
