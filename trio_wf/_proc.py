"""Starting worker processes, and waiting for them without threads or polling.

Three launchers, one per `WorkerType`, each returning a `ChildProcess`, the
parent's ends of two pipes and the worker's shared memory arena.  None of them
uses `multiprocessing.Process`:

* spawn runs ``python -c <bootstrap>`` through `subprocess.Popen`, so the worker
  never imports the parent's ``__main__`` (cloudpickle ships ``__main__`` functions
  by value instead), never imports trio, and an unguarded script cannot recurse;
* fork calls `os.fork` and the child goes straight into the worker loop;
* forkserver asks a trio-free server process (see `_trio_wf_worker._forkserver`) to
  fork; the server reports each child's exit status over a pipe.

Workers are not daemonic in multiprocessing's sense, so tasks may start their own
process pools, and multiprocessing's atexit hook never joins them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator

import trio

import _trio_wf_worker
from _trio_wf_worker import _forkserver, _main, _shm

_WORKER_DIR = os.path.dirname(os.path.dirname(_trio_wf_worker.__file__))
# Ignore SIGINT before anything else runs, then drop a SIGINT that arrived while
# the parent had it blocked around the spawn.
_BOOTSTRAP = (
    "import signal as s;s.signal(s.SIGINT,s.SIG_IGN);"
    "s.pthread_sigmask(s.SIG_UNBLOCK,{{s.SIGINT}});"
    "import sys;sys.path.append({dir!r});"
    "from _trio_wf_worker.{module} import {entry};{entry}({fds})"
)
_F_SETPIPE_SZ = 1031  # Linux: fcntl.F_SETPIPE_SZ, missing from fcntl before 3.10
_PIPE_SIZE = 1 << 20  # the default /proc/sys/fs/pipe-max-size


class ChildProcess(ABC):
    """A worker process we can signal, poll and wait for."""

    pid: int
    returncode: int | None = None

    @abstractmethod
    def poll(self) -> int | None:
        """Return the exit status if the process has exited, without blocking."""

    @abstractmethod
    def _wait_fd(self) -> int | None:
        """A descriptor that becomes readable when the process has exited."""

    def kill(self) -> None:
        """Send SIGKILL, unless the process is already reaped."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        """Wait until the process has exited and return its exit status."""
        while (code := self.poll()) is None:
            fd = self._wait_fd()
            if fd is None:  # pragma: no cover, kernels without pidfd
                await trio.sleep(0.005)
            else:
                await trio.lowlevel.wait_readable(fd)
        await trio.lowlevel.checkpoint()
        return code

    def wait_blocking(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds without trio (used at interpreter exit)."""
        poller = select.poll()
        fd = self._wait_fd()
        if fd is not None:
            poller.register(fd, select.POLLIN)
        end = time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = end - time.monotonic()
            if left <= 0:
                return None
            poller.poll(min(left, 0.05 if fd is None else 3600.0) * 1000)
        return code


class DirectChild(ChildProcess):
    """A child of this process (spawn and fork workers, the fork server)."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self._popen = popen
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # pragma: no cover, non-Linux or old kernel
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # pragma: no cover, reaped behind our back
                self._exited(-signal.SIGKILL)
            else:
                if pid:
                    self._exited(os.waitstatus_to_exitcode(status))
        return self.returncode

    def _exited(self, code: int) -> None:
        self.returncode = code
        if self._popen is not None:
            # Popen.__del__ warns about (and re-adopts) children it thinks still run.
            self._popen.returncode = code
        if self._pidfd is not None:
            _close_fd(self._pidfd)
            self._pidfd = None

    def _wait_fd(self) -> int | None:
        return self._pidfd

    def kill(self) -> None:
        # pidfd_send_signal cannot hit a recycled pid, os.kill could.
        if self.poll() is None and self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        else:  # pragma: no cover, non-Linux
            super().kill()


class ForkserverChild(ChildProcess):
    """A worker forked by the fork server, which reports its exit status to us."""

    def __init__(self, status_fd: int) -> None:
        self._status_fd: int | None = status_fd
        self._buffer = b""
        self.pid = 0  # set by read_pid()

    async def read_pid(self) -> int:
        while len(self._buffer) < _forkserver.PID.size:
            assert self._status_fd is not None
            await trio.lowlevel.wait_readable(self._status_fd)
            chunk = _read_nonblocking(self._status_fd)
            if chunk == b"":
                msg = "the trio_wf fork server died"
                raise OSError(msg)
            self._buffer += chunk or b""
        (self.pid,) = _forkserver.PID.unpack_from(self._buffer)
        self._buffer = self._buffer[_forkserver.PID.size :]
        return self.pid

    def poll(self) -> int | None:
        if self.returncode is None and self._status_fd is not None:
            chunk = _read_nonblocking(self._status_fd)
            if chunk == b"":
                # The server died before reporting: its children died with it
                # (PR_SET_PDEATHSIG), which is a SIGKILL.
                self._exited(-signal.SIGKILL)
            elif chunk is not None:
                self._buffer += chunk
                if len(self._buffer) >= _forkserver.STATUS.size:
                    (code,) = _forkserver.STATUS.unpack_from(self._buffer)
                    self._exited(code)
        return self.returncode

    def _exited(self, code: int) -> None:
        self.returncode = code
        if self._status_fd is not None:
            _close_fd(self._status_fd)
            self._status_fd = None

    def _wait_fd(self) -> int | None:
        return self._status_fd


def _read_nonblocking(fd: int) -> bytes | None:
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return None


def _close_fd(fd: int) -> None:
    # Tell trio first, in case a task is waiting on it; outside trio, just close.
    with contextlib.suppress(RuntimeError):
        trio.lowlevel.notify_closing(fd)
    os.close(fd)


def close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            _close_fd(fd)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    # The child inherits the mask: a Ctrl+C during its start-up stays pending until
    # it has set SIGINT to SIG_IGN (see _BOOTSTRAP), so it never prints a traceback.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    with contextlib.suppress(OSError):  # Linux only; larger pipes, fewer wake-ups
        fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
    return r, w


class Launched:
    """A just-started worker process, the parent's ends of its pipes, its arena."""

    __slots__ = (
        "arena_fd",
        "die_with_parent",
        "parent_pid",
        "process",
        "recv_fd",
        "send_fd",
    )

    def __init__(
        self,
        process: ChildProcess,
        send_fd: int,
        recv_fd: int,
        arena_fd: int,
        parent_pid: int,
        *,
        die_with_parent: bool,
    ) -> None:
        self.process = process
        self.send_fd = send_fd
        self.recv_fd = recv_fd
        self.arena_fd = arena_fd  # the worker's shared memory arena (see _shm)
        # The worker's own parent, for its PR_SET_PDEATHSIG check.
        self.parent_pid = parent_pid
        # PR_SET_PDEATHSIG fires when the *thread* that started the worker exits,
        # so it is only safe for workers started by a thread that lives as long as
        # the process: the main thread (or the fork server's).
        self.die_with_parent = die_with_parent


def _spawn_python(module: str, entry: str, pass_fds: tuple[int, ...]) -> DirectChild:
    code = _BOOTSTRAP.format(
        dir=_WORKER_DIR,
        module=module,
        entry=entry,
        fds=",".join(map(str, pass_fds)),
    )
    argv = [
        sys.executable,
        *subprocess._args_from_interpreter_flags(),  # type: ignore[attr-defined]
        "-c",
        code,
    ]
    with _sigint_blocked():
        popen = subprocess.Popen(argv, pass_fds=pass_fds, stdin=subprocess.DEVNULL)
    return DirectChild(popen.pid, popen)


class _Ends:
    """The descriptors of a worker about to start: pipes and arena, both sides."""

    def __init__(self) -> None:
        self.job_r, self.job_w = _pipe()
        self.result_r, self.result_w = _pipe()
        self.arena = _shm.create_fd()

    def theirs(self) -> tuple[int, int, int]:
        """The worker's descriptors, in the order its entry points take them."""
        return self.job_r, self.result_w, self.arena

    def close_ours(self) -> None:
        close_fds(self.job_w, self.result_r, self.arena)

    def close_theirs(self) -> None:
        close_fds(self.job_r, self.result_w)


async def launch_spawn() -> Launched:
    await trio.lowlevel.checkpoint()
    ends = _Ends()
    try:
        child = _spawn_python("_main", "spawn_main", ends.theirs())
    except BaseException:
        ends.close_ours()
        raise
    finally:
        ends.close_theirs()
    return _launched(child, ends, os.getpid(), _on_main_thread())


async def launch_fork() -> Launched:
    await trio.lowlevel.checkpoint()
    _main.load_prctl()  # once here, rather than in every worker
    ends = _Ends()
    with _sigint_blocked(), warnings.catch_warnings():
        # 3.12+ warns about forking a multi-threaded process: that is precisely
        # why this worker type is documented as experimental.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover, the child never returns (coverage can't see it)
        _main.forked_main(*ends.theirs())
    ends.close_theirs()
    return _launched(DirectChild(pid), ends, os.getpid(), _on_main_thread())


class _ForkServer:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = _spawn_python(
                "_forkserver", "forkserver_main", (theirs.fileno(),)
            )
        finally:
            theirs.close()
        self.socket = ours
        self.owner = os.getpid()

    def request(self, fds: tuple[int, ...]) -> None:
        socket.send_fds(self.socket, [b"F"], list(fds))

    def close(self, timeout: float) -> None:
        self.socket.close()
        if self.process.wait_blocking(timeout) is None:
            self.process.kill()
            self.process.wait_blocking(timeout)


_forkserver_lock = threading.Lock()
_forkserver_instance: _ForkServer | None = None


def _get_forkserver() -> _ForkServer:
    global _forkserver_instance
    with _forkserver_lock:
        server = _forkserver_instance
        if (
            server is None
            or server.owner != os.getpid()
            or server.process.poll() is not None
        ):
            if server is not None:
                # Dead (killed with the process group, say), or our parent's.
                server.socket.close()
            server = _forkserver_instance = _ForkServer()
        return server


def forkserver_pid() -> int | None:
    """The fork server's pid, if one runs (tests exempt it from leak checks)."""
    server = _forkserver_instance
    if server is None or server.process.returncode is not None:
        return None
    return server.process.pid


def close_forkserver(timeout: float = 5.0) -> None:
    """Stop the fork server (at interpreter exit, after the workers are gone)."""
    global _forkserver_instance
    with _forkserver_lock:
        server, _forkserver_instance = _forkserver_instance, None
    if server is not None and server.owner == os.getpid():
        server.close(timeout)


async def launch_forkserver() -> Launched:
    await trio.lowlevel.checkpoint()
    server = _get_forkserver()
    ends = _Ends()
    status_r, status_w = os.pipe()
    os.set_blocking(status_r, False)
    try:
        server.request((*ends.theirs(), status_w))
    except BaseException:
        ends.close_ours()
        close_fds(status_r)
        raise
    finally:
        ends.close_theirs()
        close_fds(status_w)
    child = ForkserverChild(status_r)
    try:
        with trio.CancelScope(shield=True):  # the fork is already under way
            await child.read_pid()
    except BaseException:
        ends.close_ours()
        close_fds(status_r)
        raise
    return _launched(child, ends, server.process.pid, True)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _launched(
    child: ChildProcess, ends: _Ends, ppid: int, die_with_parent: bool
) -> Launched:
    os.set_blocking(ends.job_w, False)
    os.set_blocking(ends.result_r, False)
    return Launched(
        child,
        ends.job_w,
        ends.result_r,
        ends.arena,
        ppid,
        die_with_parent=die_with_parent,
    )
