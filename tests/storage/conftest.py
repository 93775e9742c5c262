"""Every storage test runs the Redis scripts checked for undeclared keys (:mod:`declared`)."""

from __future__ import annotations

import pytest

from .declared import declared_keys_only


@pytest.fixture(autouse=True)
def _declared_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    declared_keys_only(monkeypatch)
