"""Large payloads through each worker's shared memory arena (``_shm``).

What row 14 of the fault matrix asks of large data (crash and cancel with it in
flight) is in ``test_faults.py``, through the arena and through the pipe; the
autouse leak check fails any test that leaves an arena open or mapped.
"""

from __future__ import annotations

import itertools
import os
import resource
import signal
from typing import Any

import numpy as np
import pytest
import trio

import trio_wf
from _trio_wf_worker._copies import MAPPED
from _trio_wf_worker._shm import KEEP, TRIM_AFTER
from trio_wf import WorkerType

from . import workers
from .conftest import arena_mappings

MIB = 1 << 20


@pytest.fixture
async def ctx(worker_type: WorkerType) -> Any:
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        yield ctx


async def test_small_calls_never_map_the_arena(ctx: trio_wf.WorkerContext) -> None:
    with trio.fail_after(20):
        assert await ctx.run_sync(workers.echo, b"x" * 60_000) == b"x" * 60_000
    assert not arena_mappings()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(os.urandom(3 * MIB), id="bytes"),
        pytest.param(bytearray(os.urandom(3 * MIB)), id="bytearray"),
        pytest.param({"nested": os.urandom(3 * MIB)}, id="nested-bytes"),
        pytest.param(list(range(500_000)), id="large-pickle-stream"),
        pytest.param(np.arange(MIB, dtype=np.float32).reshape(256, -1), id="numpy-C"),
        pytest.param(np.asfortranarray(np.ones((512, 512, 3))), id="numpy-F"),
        pytest.param(np.arange(2 * MIB, dtype=np.int16)[::2], id="numpy-strided"),
        pytest.param(np.arange(5 * MIB, dtype=np.float64), id="numpy-mapped-copy"),
    ],
)
async def test_large_values_round_trip(ctx: trio_wf.WorkerContext, value: Any) -> None:
    with trio.fail_after(20):
        out = await ctx.run_sync(workers.echo, value)
    assert type(out) is type(value)
    if isinstance(value, np.ndarray):
        assert out.dtype == value.dtype
        assert out.flags.f_contiguous >= value.flags.f_contiguous  # order kept
        assert out.flags.writeable
        np.testing.assert_array_equal(out, value)
    else:
        assert out == value


async def test_large_items_of_a_result(ctx: trio_wf.WorkerContext) -> None:
    data = os.urandom(2 * MIB)
    with trio.fail_after(20):
        assert await ctx.run_sync(workers.with_copies, data) == (
            data,
            len(data),
            [data, data[:100]],
        )


@pytest.mark.parametrize("size", [MIB, MAPPED], ids=["heap", "mapped"])
async def test_buffers_kept_by_their_object_stay_intact(
    ctx: trio_wf.WorkerContext, size: int
) -> None:
    """An object that keeps the buffer it was unpickled with owns a copy: the
    next messages through the arena, of the same size, do not change it, on
    either side (a kept block is reused only once nothing refers to it)."""
    values = [os.urandom(size) for _ in range(3)]
    with trio.fail_after(30):
        kept = [await ctx.run_sync(workers.keep, workers.Keeper(v)) for v in values]
        assert await ctx.run_sync(workers.kept) == values
    assert [bytes(keeper.buffer) for keeper in kept] == values


async def test_a_dropped_array_lends_its_copy_to_the_next(
    ctx: trio_wf.WorkerContext,
) -> None:
    """From MAPPED up, the next result of the same size is copied into the block
    of a result the caller has dropped: no page to fault in again."""
    array = np.zeros(MAPPED, dtype=np.uint8)
    with trio.fail_after(30):
        out = await ctx.run_sync(workers.echo, array)
        address = out.__array_interface__["data"][0]
        del out
        out = await ctx.run_sync(workers.echo, array + 1)
    assert out.__array_interface__["data"][0] == address
    assert (out == 1).all()


async def test_arrays_in_use_are_never_reused(ctx: trio_wf.WorkerContext) -> None:
    """Mapped copies are reused only once their arrays are gone: results kept
    across later calls of the same size keep their values."""
    arrays = [np.full(MAPPED, i, dtype=np.uint8) for i in range(4)]
    with trio.fail_after(30):
        first = await ctx.run_sync(workers.echo, arrays[0])
        second = await ctx.run_sync(workers.echo, arrays[1])
        third = await ctx.run_sync(workers.echo, arrays[2])
        del second  # its block may now serve the next result
        fourth = await ctx.run_sync(workers.echo, arrays[3])
    for out, value in zip((first, third, fourth), (0, 2, 3), strict=True):
        assert out.flags.writeable
        assert (out == value).all()


NEEDS_GLIBC = pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="the heap's reuse is glibc's",
)


def _huge_pages_advisable() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            return "[never]" not in setting.read()
    except OSError:
        return False


async def _faults_on_later_calls(
    ctx: trio_wf.WorkerContext, value: Any
) -> tuple[int, int]:
    """The fewest minor page faults of the parent and of the worker in the
    second and third echoes of ``value`` (the previous result dropped before
    each).  The fewest, because one of them now and then faults every page in,
    which we have not explained (the CI saw it in the worker, for NumPy)."""
    parent, worker = [], []
    with trio.fail_after(30):
        await ctx.run_sync(workers.echo, value)
        for _ in range(2):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            worker_before = await ctx.run_sync(workers.minor_faults)
            out = await ctx.run_sync(workers.echo, value)
            worker.append(await ctx.run_sync(workers.minor_faults) - worker_before)
            parent.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            assert type(out) is type(value)
            del out
    return min(parent), min(worker)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(os.urandom(16 * MIB), id="heap-bytes", marks=NEEDS_GLIBC),
        pytest.param(
            np.zeros(16 * MIB, dtype=np.uint8), id="heap-numpy", marks=NEEDS_GLIBC
        ),
        pytest.param(np.zeros(64 * MIB, dtype=np.uint8), id="mapped-numpy"),
    ],
)
async def test_second_call_of_a_size_reuses_memory(
    worker_type: WorkerType, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the second call of a size, a call touches no fresh page on either
    side (4096 faults per 16 MiB without): copies below MAPPED come from the
    malloc heap, which keeps the previous call's, and larger arrays' copies
    from the blocks each side keeps for reuse."""
    heap = value.nbytes < MAPPED if isinstance(value, np.ndarray) else True
    if heap and workers.malloc_settings():
        pytest.skip("this run's environment fixes malloc's thresholds")
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in this process's environment
    # when a Dask test runs before this one; a spawned worker would inherit it.
    for name in workers.MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            assert not await ctx.run_sync(workers.malloc_settings)
        parent, worker = await _faults_on_later_calls(ctx, value)
    assert parent < 512
    assert worker < 512


@pytest.mark.skipif(not _huge_pages_advisable(), reason="no transparent huge pages")
async def test_large_arrays_are_copied_into_huge_pages(
    ctx: trio_wf.WorkerContext,
) -> None:
    """From MAPPED up, an array's new copy is a mapping of its own, advised to use
    huge pages: 64 MiB fault about 32 times, not 16384."""
    array = np.zeros(64 * MIB, dtype=np.uint8)
    with trio.fail_after(30):
        kept = [await ctx.run_sync(workers.echo, array)]  # warms the arena
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        kept.append(await ctx.run_sync(workers.echo, array))  # a new block
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 2048


async def test_kept_copies_are_given_back_when_idle(worker_type: WorkerType) -> None:
    """Each side keeps its mapped copies for the next call; the worker unmaps
    its own once it has waited TRIM_AFTER for a job, the parent its own when the
    worker goes."""
    size = 44 * MIB  # a size no other test uses
    before = workers.mappings_of_size(size)
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(30):
            pid = await ctx.run_sync(workers.pid)
            await ctx.run_sync(workers.echo, np.zeros(size, dtype=np.uint8))
            assert workers.mappings_of_size(size) == before + 1  # result dropped
            assert workers.mappings_of_size(size, pid) == 1  # the argument's
            # Nothing signals the worker's trim: the parent polls its maps.
            for _ in itertools.count():
                if not workers.mappings_of_size(size, pid):
                    break
                await trio.sleep(TRIM_AFTER / 10)
    assert workers.mappings_of_size(size) == before


async def test_arena_keeps_memory_while_busy_and_trims_when_idle(
    ctx: trio_wf.WorkerContext,
) -> None:
    """After a message larger than KEEP, the arena keeps its memory for the next
    call; once the worker has waited TRIM_AFTER for a job, both sides hold at
    most KEEP."""
    data = bytes(KEEP + 32 * MIB)
    with trio.fail_after(30):
        assert await ctx.run_sync(workers.echo, data) == data
        assert workers.arena_rss() > KEEP
        # Nothing signals the worker's trim (its wait for a job times out), so
        # the parent polls its own view of the shared pages, under fail_after.
        for _ in itertools.count():
            if workers.arena_rss() <= KEEP:
                break
            await trio.sleep(TRIM_AFTER / 10)
        assert workers.arena_rss() > 0
        assert 0 < await ctx.run_sync(workers.arena_rss) <= KEEP
        # and the arena still works, for large and small messages
        assert await ctx.run_sync(workers.echo, data) == data
        assert await ctx.run_sync(workers.echo, b"small") == b"small"


async def test_result_that_cannot_reach_shared_memory(worker_type: WorkerType) -> None:
    """A worker whose arena cannot grow reports it, and serves the next call."""
    async with trio_wf.open_worker_context(
        init=workers.limit_file_size, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
            with pytest.raises(TypeError, match="copied to shared memory") as info:
                await ctx.run_sync(workers.zeros, 8 * MIB)
            assert isinstance(info.value.__cause__, OSError)
            assert await ctx.run_sync(workers.zeros, 100) == bytes(100)
            assert await ctx.run_sync(workers.pid) == pid


async def test_arguments_that_cannot_reach_shared_memory() -> None:
    """If the parent cannot grow an arena, the call fails before it is sent, and
    the worker stays."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
            try:
                with pytest.raises(OSError, match="could not copy the arguments"):
                    await ctx.run_sync(workers.echo, bytes(8 * MIB))
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
                signal.signal(signal.SIGXFSZ, handler)
            assert await ctx.run_sync(workers.pid) == pid


async def test_forked_workers_do_not_inherit_arenas() -> None:
    """The parent maps arenas with MADV_DONTFORK: a fork worker started after
    another worker's large transfer holds no mapping of that worker's arena."""
    async with trio_wf.open_worker_context(worker_type=WorkerType.FORK) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            assert await ctx.run_sync(workers.echo, bytes(2 * MIB)) == bytes(2 * MIB)
            assert arena_mappings()  # the parent maps the first worker's arena
            await ctx.start_workers(2)  # forks a second worker
            reports = []

            async def report() -> None:
                reports.append(await ctx.run_sync(workers.pid_and_arena_mappings))

            async with trio.open_nursery() as nursery:  # one call per worker
                nursery.start_soon(report)
                nursery.start_soon(report)
    mappings = dict(reports)  # pid -> arenas it maps
    assert len(mappings) == 2
    assert mappings.pop(first) == 1  # its own
    assert list(mappings.values()) == [0]
