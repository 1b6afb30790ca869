"""Fixtures of the workflow tests."""

from __future__ import annotations

import pytest

from tests.workflow.helpers import InProcess


@pytest.fixture
def backend() -> InProcess:
    """An in-process backend whose calls take one second of Trio time."""
    return InProcess()
