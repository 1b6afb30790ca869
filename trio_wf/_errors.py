"""Errors raised by the dispatch layer."""

from __future__ import annotations

import signal

import attrs


@attrs.frozen
class WorkerExit:
    """How one worker process ended: its pid and exit status.

    Attributes:
        pid: the worker's process id.
        exitcode: its exit status as :attr:`subprocess.Popen.returncode` gives it:
            ``-N`` when killed by signal ``N``, ``None`` if it is still running.
    """

    pid: int
    exitcode: int | None

    @property
    def signal_name(self) -> str | None:
        """Name of the signal that killed the worker (``"SIGKILL"``), if any."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    def describe(self) -> str:
        """``"worker process 123 was killed by SIGKILL"``, say."""
        if self.exitcode is None:
            return f"worker process {self.pid} is still running"
        if self.exitcode >= 0:
            return f"worker process {self.pid} exited with code {self.exitcode}"
        text = f"worker process {self.pid} was killed by {self.signal_name}"
        if self.exitcode == -signal.SIGKILL:
            text += " (possibly out of memory, or killed by another program)"
        return text


class BrokenWorkerError(RuntimeError):
    """A worker died or misbehaved while it held a call, or would not shut down.

    Raised by ``run_sync`` when the worker running the call dies (a segfault,
    ``os._exit``, an external ``SIGKILL``...), when ``init`` fails in a new worker
    (the ``init`` exception is the ``__cause__``) or ``retire`` raised after the
    previous job, and by closing a context when workers fail to exit cleanly within
    ``grace_period``.  Only the affected call fails; the context replaces the worker.

    As in trio-parallel, the last arguments describe the workers involved: they are
    `WorkerExit` records, with ``pid`` and ``exitcode`` attributes.  A Dask
    worker (see :doc:`/scaling`) has no local pid: the error names it by
    ``address`` instead, and has no records.

    Attributes:
        workers: the `WorkerExit` records of the workers involved.
        address: the address of the Dask worker involved (or of the scheduler,
            when the connection to it was lost); ``None`` for local workers.
    """

    def __init__(
        self, message: str, *workers: WorkerExit, address: str | None = None
    ) -> None:
        super().__init__(message, *workers)
        self.workers = workers
        # Pickled with the instance __dict__, so it survives the round trip.
        self.address = address

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def pid(self) -> int | None:
        """Process id of the (last) worker involved."""
        return self.workers[-1].pid if self.workers else None

    @property
    def exitcode(self) -> int | None:
        """Exit status of the (last) worker involved; ``-N`` for signal ``N``."""
        return self.workers[-1].exitcode if self.workers else None

    @property
    def signal_name(self) -> str | None:
        """Name of the signal that killed the (last) worker, if one did."""
        return self.workers[-1].signal_name if self.workers else None
