"""Contract tests of persistence: a re-run executes only what did not succeed
(fault row 29, last clause)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import (
    NodeEvent,
    NodeStatus,
    WorkflowExecutionError,
    execute_graph,
)

from .helpers import graph, link, method
from .test_loops import counter as counter_loop

RV = "return_value"


def diamond(runs: Path, flag: Path) -> Any:
    """a -> (b, c) -> d; b fails unless ``flag`` exists; every node records."""

    def node(node_id: str, task: str = "record", **inputs: Any) -> Any:
        inputs = {"path": str(runs), "name": node_id, **inputs}
        return method(node_id, task, inputs=inputs)

    return graph(
        [
            node("a"),
            node("b", "record_unless_flag", flag=str(flag)),
            node("c"),
            node("d"),
        ],
        [
            link("a", "b", (RV, "from_a")),
            link("a", "c", (RV, "from_a")),
            link("b", "d", (RV, "from_b")),
            link("c", "d", (RV, "from_c")),
        ],
    )


def run_with_events(document: Any, **options: Any) -> tuple[Any, list[tuple[Any, str]]]:
    events: list[NodeEvent] = []
    try:
        result = execute_graph(document, on_event=events.append, **options)
    except WorkflowExecutionError as exc:
        result = exc
    return result, sorted((event.node_id, event.kind) for event in events)


def test_rerun_executes_only_the_failed_node_and_what_follows(tmp_path: Path) -> None:
    """Row 29: a->(b fails, c)->d; once b is fixed, only b and d run again."""
    runs, flag, cache = tmp_path / "runs.txt", tmp_path / "fixed", tmp_path / "cache"
    document = diamond(runs, flag)
    first, _ = run_with_events(document, cache_dir=cache, max_workers=2)
    assert isinstance(first, WorkflowExecutionError)
    assert first.statuses["d"] is NodeStatus.SKIPPED
    assert sorted(runs.read_text().split()) == ["a", "b", "c"]

    flag.touch()  # the fix
    runs.write_text("")
    second, events = run_with_events(document, cache_dir=cache, max_workers=2)
    assert second == {RV: "d"}
    assert sorted(runs.read_text().split()) == ["b", "d"]
    assert events == [
        ("a", "cached"),
        ("b", "end"),
        ("b", "queued"),
        ("b", "start"),
        ("c", "cached"),
        ("d", "end"),
        ("d", "queued"),
        ("d", "start"),
    ]

    runs.write_text("")
    third, events = run_with_events(document, cache_dir=cache, worker_type="thread")
    assert third == second
    assert runs.read_text() == ""
    assert {kind for _, kind in events} == {"cached"}


def test_files_are_private_and_written_whole(tmp_path: Path) -> None:
    """The directory is created 0700, files are 0600, no temporary file is left."""
    cache = tmp_path / "cache"
    runs = tmp_path / "runs.txt"
    flag = tmp_path / "fixed"
    flag.touch()
    execute_graph(diamond(runs, flag), cache_dir=cache, worker_type="sequential")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = sorted(cache.iterdir())
    assert len(files) == 4
    for file in files:
        assert file.suffix == ".pickle"
        assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_changed_inputs_rerun_their_node_and_its_descendants(tmp_path: Path) -> None:
    """Keys chain: a new input of ``a`` changes every key downstream."""
    runs, flag, cache = tmp_path / "runs.txt", tmp_path / "fixed", tmp_path / "cache"
    flag.touch()
    document = diamond(runs, flag)
    options: dict[str, Any] = {"cache_dir": cache, "worker_type": "sequential"}
    execute_graph(document, **options)
    runs.write_text("")
    execute_graph(document, inputs=[{"id": "c", "name": "x", "value": 1}], **options)
    assert sorted(runs.read_text().split()) == ["c", "d"]
    runs.write_text("")
    execute_graph(document, inputs=[{"id": "a", "name": "x", "value": 1}], **options)
    assert sorted(runs.read_text().split()) == ["a", "b", "c", "d"]


def test_varinfo_is_ewoks_store_not_cache_dir(tmp_path: Path) -> None:
    """``varinfo`` is ewokscore's persistence (see test_ewoks_persistence.py),
    not a spelling of ``cache_dir``: passing both is refused."""
    runs, flag = tmp_path / "runs.txt", tmp_path / "fixed"
    flag.touch()
    document = diamond(runs, flag)
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": "json"}
    with pytest.raises(ValueError, match=r"either cache_dir .* or varinfo"):
        execute_graph(document, varinfo=varinfo, cache_dir=tmp_path / "cache")
    with pytest.raises(TypeError, match="root_uri'] must be a directory"):
        execute_graph(document, varinfo={"root_uri": 3})
    assert not (tmp_path / "cache").exists()
    assert not runs.exists() or not runs.read_text()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    """Pickles run code when read: a group- or world-writable directory is refused."""
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    runs = tmp_path / "runs.txt"
    with pytest.raises(PermissionError, match="writable by other users"):
        execute_graph(diamond(runs, tmp_path), cache_dir=cache)
    assert not runs.exists()


def test_unreadable_or_unpicklable_entries_are_recomputed(tmp_path: Path) -> None:
    """A corrupt file reruns its node; outputs that cannot be pickled are not
    stored, and the node runs again next time."""
    cache = tmp_path / "cache"
    options: dict[str, Any] = {"cache_dir": cache, "worker_type": "sequential"}
    runs, flag = tmp_path / "runs.txt", tmp_path / "fixed"
    flag.touch()
    document = diamond(runs, flag)
    execute_graph(document, **options)
    for file in cache.iterdir():
        file.write_bytes(b"not a pickle")
    runs.write_text("")
    execute_graph(document, **options)
    assert sorted(runs.read_text().split()) == ["a", "b", "c", "d"]

    unpicklable = graph([method("l", "lock")])
    for _ in range(2):
        _, events = run_with_events(unpicklable, **options)
        assert events == [("l", "end"), ("l", "queued"), ("l", "start")]


def test_loops_are_cached_per_iteration(tmp_path: Path) -> None:
    """A loop's result is the same from the cache; every iteration is reused."""
    options: dict[str, Any] = {
        "cache_dir": tmp_path,
        "worker_type": "sequential",
        "inputs": [{"id": "init", "name": "value", "value": 0}],
    }
    first, events = run_with_events(counter_loop(), **options)
    assert first == {"_ppfdict": {"value": 5, "limit": 5, "too_small": False}}
    second, cached = run_with_events(counter_loop(), **options)
    assert second == first
    assert {kind for _, kind in cached} == {"cached"}
    assert len(cached) == len([e for e in events if e[1] == "end"])


def test_an_entry_that_cannot_be_opened_is_a_miss(tmp_path: Path) -> None:
    """A directory where a file should be: the node runs, its store fails it."""
    runs, flag = tmp_path / "runs.txt", tmp_path / "fixed"
    flag.touch()
    cache = tmp_path / "cache"
    document = graph([method("a", "record", inputs={"path": str(runs), "name": "a"})])
    execute_graph(document, cache_dir=cache, worker_type="sequential")
    (entry,) = cache.iterdir()
    entry.unlink()
    entry.mkdir()
    with pytest.raises(WorkflowExecutionError, match="IsADirectoryError"):
        execute_graph(document, cache_dir=cache, worker_type="sequential")
    assert runs.read_text() == "a\na\n"
