"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinygrad_cnn import Config, Context


@pytest.fixture(autouse=True)
def grad_mode_left_on() -> Iterator[None]:
    """A test that leaks `no_grad` would silently stop every later test from recording graphs."""
    assert Config.enable_grad, "grad mode was already off when the test started"
    yield
    assert Config.enable_grad, "the test left grad mode off"


@pytest.fixture
def op_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the ops applied from now on: every `Function.apply` builds one `Context`, recorded or not."""
    applied: list[str] = []
    build = Context.__init__

    def logging_init(self: Context, fn: type, inputs: tuple, attrs: dict) -> None:
        applied.append(fn.__name__)
        build(self, fn, inputs, attrs)

    monkeypatch.setattr(Context, "__init__", logging_init)
    return applied
