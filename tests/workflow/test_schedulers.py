"""Unit tests of ewoksdask's scheduler spellings (`trio_wf.workflow._schedulers`).

Pure mapping, no backend is opened: tests/test_dask.py runs graphs on the Dask
ones, tests/workflow/test_execute.py on the local ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from trio_wf.workflow._schedulers import DASK, Backend, from_ewoksdask


@pytest.mark.parametrize(
    ("scheduler", "options", "expected"),
    [
        (None, None, Backend("spawn")),
        ("multiprocessing", {"num_workers": 3}, Backend("spawn", 3)),
        (None, {"context": "forkserver", "chunksize": 1}, Backend("forkserver")),
        ("multithreading", {"num_workers": 2}, Backend("thread", 2)),
        ("sequential", {}, Backend("sequential")),
        ("cluster", None, Backend(DASK)),
        (
            "cluster",
            {"n_workers": 2, "memory_limit": "1GiB", "threads_per_worker": 1},
            Backend(
                DASK,
                dask={
                    "n_workers": 2,
                    "cluster_options": {
                        "memory_limit": "1GiB",
                        "threads_per_worker": 1,
                    },
                },
            ),
        ),
        (
            "tls://head:8786",
            {"security": "s", "connect_timeout": 2},
            Backend(
                DASK,
                dask={
                    "address": "tls://head:8786",
                    "security": "s",
                    "connect_timeout": 2,
                },
            ),
        ),
        ("127.0.0.1:8786", None, Backend(DASK, dask={"address": "127.0.0.1:8786"})),
    ],
)
def test_ewoksdask_spellings_map_to_backends(
    scheduler: Any, options: Any, expected: Backend
) -> None:
    """Each ewoksdask scheduler names one backend, with its options."""
    assert from_ewoksdask(scheduler, options) == expected


@pytest.mark.parametrize(
    ("scheduler", "options", "message"),
    [
        ("processes", None, "scheduler='processes' has no trio_wf equivalent"),
        (None, {"context": "threads"}, r"context='threads'.*start methods"),
        (None, {"chunksize": 8}, "chunksize.*each node to a worker on its own"),
        ("multithreading", {"context": "spawn"}, "takes for multithreading are: num"),
        ("sequential", {"num_workers": 2}, "takes for sequential are: none"),
        ("tcp://h:1", {"n_workers": 2}, "for a scheduler address are: security"),
        (None, {"num_workers": 0}, "num_workers must be a positive int, got 0"),
    ],
)
def test_what_has_no_equivalent_is_refused_with_the_reason(
    scheduler: Any, options: Any, message: str
) -> None:
    """Unknown schedulers and options are a ValueError that says why."""
    with pytest.raises(ValueError, match=message):
        from_ewoksdask(scheduler, options)


def test_scheduler_options_must_be_a_mapping() -> None:
    """One mapping, as ewoksdask takes it."""
    with pytest.raises(TypeError, match="scheduler_options must be a dict, got list"):
        from_ewoksdask(None, [("num_workers", 2)])  # type: ignore[arg-type]
