"""The ``retire`` policy class; it lives worker-side so workers never import trio."""

from __future__ import annotations

from typing import final


@final
class RetirePolicy:
    """A picklable ``retire`` callable built by `retire_policy`.

    Each worker unpickles its own copy, so the job count is per worker.
    """

    __slots__ = ("_jobs", "max_jobs", "max_rss")

    def __init__(self, max_jobs: int | None, max_rss: int | None) -> None:
        self.max_jobs = max_jobs
        self.max_rss = max_rss
        self._jobs = 0

    def __call__(self) -> bool:
        self._jobs += 1
        if self.max_jobs is not None and self._jobs >= self.max_jobs:
            return True
        return self.max_rss is not None and self.current_rss() > self.max_rss

    @staticmethod
    def current_rss() -> int:
        """Resident set size of this (worker) process in bytes, from psutil."""
        import psutil  # only workers with a memory limit pay for it

        return int(psutil.Process().memory_info().rss)

    def __getstate__(self) -> tuple[int | None, int | None]:
        return self.max_jobs, self.max_rss

    def __setstate__(self, state: tuple[int | None, int | None]) -> None:
        self.max_jobs, self.max_rss = state
        self._jobs = 0

    def __repr__(self) -> str:
        return f"retire_policy(max_jobs={self.max_jobs!r}, max_rss={self.max_rss!r})"
