"""Fixtures shared by the primitive-family tests."""
import pytest

from fxgrad.config import config


@pytest.fixture
def unsimplified(monkeypatch):
    """Lower programs as traced, so each case reaches its own primitive's lowering."""
    monkeypatch.setattr(config, "jit_simplify", False)


@pytest.fixture
def ieee_subnormals(monkeypatch):
    """Kernels keep IEEE subnormals, as eager numpy does (tables with subnormal inputs)."""
    monkeypatch.setattr(config, "flush_denormals", False)
