"""A fork server: a clean, trio-free process that forks workers on request.

The parent sends one byte and four file descriptors over a Unix socket pair: the
new worker's job pipe, its result pipe, its shared memory arena and a *status*
pipe.  The server forks; the child serves jobs with the first three; the server
writes the child's pid to the status pipe and, once it has reaped the child, its
exit status, then closes it.  So the parent can wait for a worker it did not fork,
without polling.

The server exits when the parent closes the socket (or dies); its busy children
then die too, through ``PR_SET_PDEATHSIG``.  It outlives a SIGTERM that ends its
workers, so that it can report their exit status.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct

from ._main import forked_main, load_prctl

PID = struct.Struct("<q")
STATUS = struct.Struct("<q")


def forkserver_main(control_fd: int) -> None:
    """Run the fork server on the socket ``control_fd`` until it reaches EOF."""
    control = socket.socket(fileno=control_fd)
    load_prctl()  # once here, rather than in every worker
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A Python-level handler (that does nothing) makes SIGCHLD write to wake_w.
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    # A SIGTERM to the process group (a service manager's stop) ends the workers,
    # and the server stays to report how they ended: it leaves when the parent
    # does.  A handler rather than SIG_IGN, which the workers would inherit.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    children: dict[int, int] = {}  # pid -> status fd
    try:
        while True:
            readable, _, _ = select.select([control_fd, wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 4096)
                _reap(children)
            if control_fd in readable:
                message, fds, _, _ = socket.recv_fds(control, 1, 4)
                if not message:
                    return
                job_fd, result_fd, arena_fd, status_fd = fds
                pid = os.fork()
                if pid == 0:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    forked_main(job_fd, result_fd, arena_fd)
                children[pid] = status_fd
                for fd in (job_fd, result_fd, arena_fd):
                    os.close(fd)
                os.write(status_fd, PID.pack(pid))
    finally:
        control.close()  # no ResourceWarning at exit
        _reap(children)


def _reap(children: dict[int, int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # pragma: no cover, children is out of sync
            return
        if pid == 0:
            return
        status_fd = children.pop(pid)
        try:
            os.write(status_fd, STATUS.pack(os.waitstatus_to_exitcode(status)))
        except OSError:
            pass  # the parent stopped listening: it no longer cares
        os.close(status_fd)
