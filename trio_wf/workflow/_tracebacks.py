"""Tracebacks that point at the user's code, not at the engine's.

A task's exception reaches the parent with the frames of every layer it went
through: the walker, the dispatch layer, Trio's threads, `outcome`, the
worker's loop; only the task's own frames say where the problem is.  These
helpers drop the others (the frames in trio_wf, its worker package, trio and
outcome, and the import machinery) from an exception and from every exception
chained to it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator

import outcome
import trio

import _trio_wf_worker
import trio_wf

_ENGINE_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep
    for module in (trio_wf, _trio_wf_worker, trio, outcome)
)


def is_user_frame(frame: traceback.FrameSummary) -> bool:
    """Whether a frame is the user's: not the engine's, not the importer's."""
    filename = frame.filename
    return not (
        os.path.abspath(filename).startswith(_ENGINE_DIRS)
        or filename.startswith("<frozen importlib")
    )


def user_frames(error: BaseException) -> traceback.StackSummary:
    """The frames of ``error``'s own traceback that are the user's code."""
    frames = traceback.extract_tb(error.__traceback__)
    return traceback.StackSummary.from_list(
        [frame for frame in frames if is_user_frame(frame)]
    )


def format_user_traceback(error: BaseException) -> str:
    """``error`` as Python prints it, chained exceptions and notes included,
    with the user's frames only."""
    report = traceback.TracebackException.from_exception(error)
    for part in _chain(report, set()):
        part.stack = traceback.StackSummary.from_list(
            [frame for frame in part.stack if is_user_frame(frame)]
        )
    # A part left with no frame is printed without a "Traceback" header.
    return "".join(report.format())


def _chain(
    report: traceback.TracebackException, seen: set[int]
) -> Iterator[traceback.TracebackException]:
    if id(report) in seen:
        return
    seen.add(id(report))
    yield report
    for inner in (report.__cause__, report.__context__):
        if inner is not None:
            yield from _chain(inner, seen)
    for nested in getattr(report, "exceptions", None) or ():
        yield from _chain(nested, seen)
