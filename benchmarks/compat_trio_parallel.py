"""Run one trio-parallel program against trio_parallel or trio_wf, to diff them.

Usage (trio-parallel installed beside trio_wf, e.g. in the bench session)::

    python benchmarks/compat_trio_parallel.py trio_parallel > tp.txt
    python benchmarks/compat_trio_parallel.py trio_wf > wf.txt
    diff tp.txt wf.txt

Expected differences: pids; trio-parallel's BrokenWorkerProcessError subclass; the
init failure's ``__cause__`` (trio_wf keeps it); attrs' NotCallableError (a
TypeError subclass) vs TypeError; the DeprecationWarning for ``cancellable``.
"""

import functools
import importlib
import os
import signal
import sys
import time
import warnings

import trio

tp = importlib.import_module(sys.argv[1])


def work(x, y=1):
    return x * y


def pid():
    return os.getpid()


def raise_chain():
    try:
        raise KeyError("inner")
    except KeyError as e:
        raise ValueError("outer", 1) from e


def exit42():
    os._exit(42)


def segv():
    os.kill(os.getpid(), signal.SIGSEGV)


def sigint():
    signal.raise_signal(signal.SIGINT)
    return "survived"


def sleeper():
    time.sleep(30)


def sys_exit():
    sys.exit(3)


def retire_true():
    return True


def bad_init():
    raise RuntimeError("init fails")


async def check(label, coro):
    try:
        r = await coro
        print(f"{label}: ok {r!r}")
    except BaseException as e:
        extra = ""
        if isinstance(e, tp.BrokenWorkerError):
            extra = f" exitcode={e.args[-1].exitcode}"
        print(f"{label}: {type(e).__name__} cause={type(e.__cause__).__name__}{extra}")


async def main():
    lim = tp.current_default_worker_limiter()
    print("limiter tokens", lim.total_tokens == os.cpu_count(), type(lim).__name__)
    print("worker types", sorted(t.value for t in tp.WorkerType))
    for wt in tp.WorkerType:
        print("==", wt.value)
        async with tp.open_worker_context(worker_type=wt) as ctx:
            await check("result", ctx.run_sync(work, 6, 7))
            await check("partial", ctx.run_sync(functools.partial(work, 2, y=3)))
            await check("lambda", ctx.run_sync(lambda: "lam"))
            await check("reuse", ctx.run_sync(pid))
            p1 = await ctx.run_sync(pid)
            p2 = await ctx.run_sync(pid)
            print("same pid", p1 == p2)
            await check("exception", ctx.run_sync(raise_chain))
            await check("sys.exit", ctx.run_sync(sys_exit))
            await check("os._exit", ctx.run_sync(exit42))
            await check("segfault", ctx.run_sync(segv))
            await check("sigint in worker", ctx.run_sync(sigint))

            async def aw():
                pass

            await check("async fn", ctx.run_sync(aw))
            with trio.move_on_after(0.5) as cs:
                await ctx.run_sync(sleeper, kill_on_cancel=True)
            print("kill_on_cancel cancelled", cs.cancelled_caught)
            with trio.move_on_after(0.2) as cs:
                r = await ctx.run_sync(work, 1, 2)
            print("uncancelled result", r)
            s = ctx.statistics()
            print("stats", s.idle_workers, s.running_workers)
    async with tp.open_worker_context(retire=retire_true) as ctx:
        pids = {await ctx.run_sync(pid) for _ in range(3)}
        print("retire True distinct pids", len(pids))
    async with tp.open_worker_context(init=bad_init) as ctx:
        await check("bad init", ctx.run_sync(pid))
    for kw in [
        {"idle_timeout": -1},
        {"grace_period": -1},
        {"init": 3},
        {"worker_type": "nope"},
    ]:
        try:
            async with tp.open_worker_context(**kw):
                pass
        except Exception as e:
            print("invalid", list(kw), type(e).__name__)
    async with tp.cache_scope():
        await check("cache_scope", tp.run_sync(work, 3))
    print("default stats", type(tp.default_context_statistics()).__name__)
    try:
        async with tp.open_worker_context() as ctx:
            pass
        await ctx.run_sync(pid)
    except Exception as e:
        print("closed context", type(e).__name__)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        await tp.run_sync(work, 1, cancellable=True)
        print("cancellable warns", [x.category.__name__ for x in w])


if __name__ == "__main__":
    tp.configure_default_context()
    trio.run(main)
