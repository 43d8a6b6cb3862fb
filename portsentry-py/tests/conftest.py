"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from frames import CAPTURES, CAPTURES_MISSING


@pytest.fixture
def captures() -> Path:
    """The directory of the shared captures; fails the test (not skips) when missing."""
    if CAPTURES is None:
        pytest.fail(CAPTURES_MISSING)
    return CAPTURES
