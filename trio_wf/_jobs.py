"""A call on its way to a worker process and back: the job's pickle, and what the
parent makes of a reply it cannot unpickle."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from _trio_wf_worker._protocol import describe_callable
from _trio_wf_worker._shm import Outgoing, encode_call


def encode_job(fn: Any, args: Sequence[Any]) -> Outgoing:
    """The `JOB` message of ``fn(*args)``, pickled once however many workers it
    is offered to.

    Raises:
        pickle.PicklingError: naming ``fn``, before any worker is involved.
    """
    try:
        return encode_call(fn, tuple(args))
    except Exception as exc:
        msg = (
            f"could not pickle the call to {describe_callable(fn)} (the function or "
            f"its arguments) to send it to a worker: {type(exc).__name__}: {exc}"
        )
        raise pickle.PicklingError(msg) from exc


def arena_error(fn: Any, pid: int, exc: OSError) -> OSError:
    """The caller's error when a job's arguments do not fit in shared memory."""
    msg = (
        f"could not copy the arguments of {describe_callable(fn)} to the "
        f"shared memory of worker process {pid}: {exc}"
    )
    error = OSError(exc.errno, msg)
    error.__cause__ = exc
    return error


def decode_exception(fn: Any, pid: int, payload: bytes | bytearray) -> BaseException:
    """The exception of an `ERROR` reply, noting the worker it came from."""
    try:
        error: BaseException = pickle.loads(payload)
    except BaseException as exc:
        return unpickling_error("exception", fn, pid, exc)
    # What add_note (3.11+) appends to; exceptiongroup's traceback patch prints
    # it on 3.10 too.
    error.__notes__ = [  # type: ignore[attr-defined]
        *getattr(error, "__notes__", ()),
        f"(raised in trio_wf worker process {pid})",
    ]
    return error


def unpickling_error(what: str, fn: Any, pid: int, exc: BaseException) -> BaseException:
    """The caller's error when the ``what`` (result, exception) of a call cannot
    be unpickled."""
    if not isinstance(exc, Exception):
        # A SystemExit (say) raised by unpickling code is the parent's own.
        return exc
    msg = (
        f"could not unpickle the {what} of {describe_callable(fn)} sent by worker "
        f"process {pid}: {type(exc).__name__}: {exc}"
    )
    error = pickle.UnpicklingError(msg)
    error.__cause__ = exc
    return error
