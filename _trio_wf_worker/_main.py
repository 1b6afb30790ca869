"""The loop a worker process runs: read a job, run it, send the outcome back.

Blocking I/O on two pipes, nothing else: no threads, no event loop.  The first
message is the configuration (the parent's ``sys.path``, its pid, the idle timeout
and the pickled ``init``/``retire`` callables); every later one is a job.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import sys
import time
import types

from ._protocol import (
    BYE,
    CONFIG,
    ERROR,
    EXIT_CLEAN,
    EXIT_RETIRE_FAILED,
    INIT_FAILED,
    READY,
    RETIRE_FAILED,
    BlockingReader,
    describe_callable,
    dumps_exception,
    flush_std_streams,
    format_exception_text,
    frame,
    write_all,
)
from ._shm import TRIM_AFTER, Arena, encode_result, load_call

TYPE_CHECKING = False  # see _protocol: no typing import at run time
if TYPE_CHECKING:
    from typing import Any

# poll() takes milliseconds in a C int: wait at most ~24 days per call.
_MAX_POLL_MS = 2**31 - 1
# Seconds a worker keeps polling its job pipe after a job before it sleeps in
# poll(): a sleeping worker sits on a halted (v)CPU, and waking it from the other
# CPU costs more than the whole round trip (see docs/performance.rst, "Idle
# latency").  The next call of a busy caller usually arrives within this window;
# an idle worker spends at most this much CPU per job, then sleeps.
SPIN = 50e-6
_PR_SET_PDEATHSIG = 1


def ignore_sigint() -> None:
    """Ctrl+C is the parent's business: it cancels, and may kill us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent blocks SIGINT while it starts us, so that a Ctrl+C during start-up
    # cannot print a KeyboardInterrupt traceback here; a pending one is now dropped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def reset_signal_handlers() -> None:
    """Restore the default action of every signal the parent handled in Python.

    Those handlers belong to the parent: trio's (``open_signal_receiver``) would
    wake the parent's event loop from here and raise into the job instead of
    letting, say, SIGTERM end the worker.  Like ``exec``, which a spawned worker
    went through, keep ignored signals ignored.
    """
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except ValueError:  # pragma: no cover, signals Python cannot query
            continue
        if callable(handler):
            signal.signal(signum, signal.SIG_DFL)


_prctl: Any = None


def load_prctl() -> None:
    """Load libc's ``prctl`` (a few ms with ctypes), once: forked children of
    this process inherit it (the fork server and fork workers' parents call
    this before forking)."""
    global _prctl
    if _prctl is None and sys.platform == "linux":
        import ctypes  # Linux only

        _prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL us when our parent dies (a busy worker sees no EOF)."""
    if sys.platform != "linux":  # pragma: no cover, Linux CI only
        return
    load_prctl()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl() took effect: then nobody will ever
    # signal us, so check, and leave by ourselves.
    if os.getppid() != parent_pid:
        os._exit(EXIT_CLEAN)


def _close_on_fork(fds: tuple[int, ...]) -> None:
    # A task may fork (multiprocessing's "fork" pools do).  Such a grandchild must
    # not keep our pipe ends open, or the parent would never see EOF when we die.
    def close() -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    os.register_at_fork(after_in_child=close)


def _run_job(kind: int, payload: bytes, arena: Arena) -> bytes:
    try:
        fn, args = load_call(arena, kind, payload)
    except BaseException as exc:
        error: Exception = pickle.UnpicklingError(
            f"could not unpickle the job in worker process {os.getpid()}: "
            f"{type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        return frame(ERROR, dumps_exception(error))
    try:
        result = fn(*args)
        if isinstance(result, types.CoroutineType):
            result.close()  # no "never awaited" warning
            msg = (
                f"run_sync expected a sync function, but {describe_callable(fn)} "
                "returned a coroutine"
            )
            raise TypeError(msg)
    except BaseException as exc:
        # Drop this frame from the traceback the caller will see.
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
            exc.__traceback__ = exc.__traceback__.tb_next
        return frame(ERROR, dumps_exception(exc))
    try:
        reply = encode_result(result)
    except BaseException as exc:
        # BaseException too: a SystemExit from a __reduce__ must not kill the
        # worker (nor, in a forked one, print a traceback); the caller learns it.
        return _result_error(fn, "pickled", exc)
    try:
        return arena.write(reply)
    except OSError as exc:  # no memory for the arena to grow, say
        return _result_error(fn, "copied to shared memory", exc)


def _result_error(fn: Any, failed: str, exc: BaseException) -> bytes:
    error = TypeError(
        f"the result of {describe_callable(fn)} could not be {failed}: "
        f"{type(exc).__name__}: {exc}"
    )
    error.__cause__ = exc
    return frame(ERROR, dumps_exception(error))


def _wait_for_job(
    poller: select.poll, reader: BlockingReader, timeout: float, arena: Arena
) -> bool:
    """Return whether a job (or EOF) arrived within ``timeout`` seconds."""
    if reader.has_buffered():
        return True
    spin = min(SPIN, timeout)
    deadline = time.monotonic() + spin
    while time.monotonic() < deadline:
        if poller.poll(0):
            return True
    timeout -= spin
    if arena.needs_trim():
        # A run of large calls keeps the arena's memory (no page faults on the
        # next one); a worker left idle gives it back.
        wait = min(timeout, TRIM_AFTER)
        if poller.poll(math.ceil(wait * 1000)):
            return True
        arena.trim()
        timeout -= wait
        if timeout <= 0:
            return False
    if math.isinf(timeout):
        return True
    while timeout * 1000 > _MAX_POLL_MS:
        if poller.poll(_MAX_POLL_MS):
            return True
        timeout -= _MAX_POLL_MS / 1000
    return bool(poller.poll(math.ceil(timeout * 1000)))


def serve(job_fd: int, result_fd: int, arena_fd: int) -> int:
    """Serve jobs until the parent closes the pipe; return the exit status."""
    _close_on_fork((job_fd, result_fd, arena_fd))
    arena = Arena(arena_fd)
    reader = BlockingReader(job_fd)
    try:
        kind, payload = reader.read_message()
    except EOFError:
        return EXIT_CLEAN
    if kind != CONFIG:  # pragma: no cover, protocol invariant
        msg = f"expected the configuration message, got kind {kind}"
        raise RuntimeError(msg)
    config: dict[str, Any] = pickle.loads(payload)
    # Set the path before unpickling init/retire: they may live in the parent's
    # modules, found through sys.path entries added at run time.
    sys.path[:] = config["sys_path"]
    if config["die_with_parent"]:
        die_with_parent(config["parent_pid"])
    if config["authkey"] is not None:
        from multiprocessing import process

        process.current_process().authkey = config["authkey"]
    try:
        init, retire = pickle.loads(config["callables"])
        init()
    except BaseException as exc:
        _send(result_fd, frame(INIT_FAILED, dumps_exception(exc)))
        return 1
    if not _send(result_fd, frame(READY)):
        return EXIT_CLEAN
    idle_timeout: float = config["idle_timeout"]
    poller = select.poll()
    poller.register(job_fd, select.POLLIN)
    # A new worker was started for a call: it waits for that call's job however
    # short the idle timeout, so a resubmitted job always finds a taker.
    first = True
    while True:
        if not first and not _wait_for_job(poller, reader, idle_timeout, arena):
            _send(result_fd, frame(BYE))
            return EXIT_CLEAN
        try:
            kind, payload = reader.read_message()
        except EOFError:
            return EXIT_CLEAN  # the parent closed the pipe: a graceful shutdown
        first = False
        if not _send(result_fd, _run_job(kind, payload, arena)):
            return EXIT_CLEAN
        try:
            should_retire = retire()
        except BaseException as exc:
            text = format_exception_text(exc)
            try:
                sys.stderr.write(
                    f"trio_wf worker process {os.getpid()}: retire callable "
                    f"{describe_callable(retire)} raised:\n{text}"
                )
            except (OSError, ValueError):  # no usable stderr: the parent still hears
                pass
            _send(result_fd, frame(RETIRE_FAILED, text.encode()))
            return EXIT_RETIRE_FAILED
        if should_retire:
            _send(result_fd, frame(BYE))
            return EXIT_CLEAN


def _send(fd: int, data: bytes) -> bool:
    """Send one message; return False if the parent is gone (EPIPE)."""
    try:
        write_all(fd, data)
    except OSError:
        return False
    return True


def spawn_main(job_fd: int, result_fd: int, arena_fd: int) -> None:
    """Entry point of a worker started with the spawn method (a fresh interpreter)."""
    code = serve(job_fd, result_fd, arena_fd)
    flush_std_streams()
    sys.exit(code)


def close_fds_except(keep: tuple[int, ...]) -> None:
    """Close every file descriptor above stderr except ``keep`` (after a fork)."""
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _multiprocessing_after_fork() -> tuple[int, ...]:
    """Do for inherited multiprocessing state what its own fork children do.

    Returns the descriptors to keep: the resource tracker's pipe, which forked
    children share with their parent (a task's process pool registers its
    semaphores there).
    """
    keep: tuple[int, ...] = ()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        fd = getattr(tracker._resource_tracker, "_fd", None)
        keep = (fd,) if fd is not None else ()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util._finalizer_registry.clear()
        util._run_after_forkers()
    process = sys.modules.get("multiprocessing.process")
    if process is not None:
        process._children.clear()  # the parent's children are not ours to join
    return keep


def _std_stream_fds() -> tuple[int, ...]:
    # sys.stdout and friends may write to descriptors above 2 (redirections,
    # pytest's capture); a forked worker keeps printing where the parent did.
    fds = []
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # closed, or not a file
            pass
    return tuple(fds)


def forked_main(job_fd: int, result_fd: int, arena_fd: int) -> None:
    """Entry point of a forked worker; never returns into the parent's code."""
    code = 1
    try:
        reset_signal_handlers()
        ignore_sigint()
        signal.set_wakeup_fd(-1)
        keep = (*_multiprocessing_after_fork(), *_std_stream_fds())
        close_fds_except((job_fd, result_fd, arena_fd, *keep))
        code = serve(job_fd, result_fd, arena_fd)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        flush_std_streams()
        # os._exit: the atexit handlers and finalizers we inherited belong to the
        # parent (they would shut down *its* workers from here).
        os._exit(code)
