"""Ready-made ``retire`` policies: after N jobs, or above a memory limit."""

from __future__ import annotations

from _trio_wf_worker._policies import RetirePolicy

from ._util import is_int_at_least


def retire_policy(
    *, max_jobs: int | None = None, max_rss: int | None = None
) -> RetirePolicy:
    """Build a ``retire`` callable that retires a worker after a number of jobs,
    or when its memory grows too large, whichever comes first.

    Pass it as the ``retire`` argument of :func:`open_worker_context`,
    :func:`cache_scope` or :func:`configure_default_context`.  Retiring recycles
    a worker whose memory leaks or fragments; the next call starts a fresh one.

    Args:
        max_jobs: retire a worker once it has run this many jobs.
        max_rss: retire a worker once its resident set size (checked with psutil
            after each job) exceeds this many bytes.

    Raises:
        ValueError: if neither limit is given, or one is not a positive integer.
    """
    if max_jobs is None and max_rss is None:
        msg = "retire_policy needs max_jobs, max_rss or both"
        raise ValueError(msg)
    for name, value in (("max_jobs", max_jobs), ("max_rss", max_rss)):
        if value is not None and not is_int_at_least(value, 1):
            msg = f"{name} must be a positive integer, got {value!r}"
            raise ValueError(msg)
    return RetirePolicy(max_jobs, max_rss)
