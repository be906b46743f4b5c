"""Fixtures of the source tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _netns import VethPair, veth_pair


@pytest.fixture
def pair() -> Iterator[VethPair]:
    """A fresh namespace and veth pair, removed after the test."""
    with veth_pair() as p:
        yield p
