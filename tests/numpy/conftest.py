"""Shared checks for the fxgrad.numpy tests: results must match numpy exactly in type,
shape and dtype, and in value up to rounding."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def assert_matches_numpy(actual: Any, expected: Any, rtol: float = 1e-6) -> None:
    """`actual` is an ndarray (0-d included) equal to numpy's `expected` in shape and dtype."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual).__name__}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


@pytest.fixture
def matches_numpy() -> Any:
    return assert_matches_numpy


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
