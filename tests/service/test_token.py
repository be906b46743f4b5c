"""TokenRef, the bearer token check, on its own (no server)."""

from __future__ import annotations

import pytest

from capsvc.service._http import TokenRef

TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"  Bearer {TOKEN}  ",
        f"Bearer   {TOKEN}",
    ],
)
def test_the_token_is_accepted(header: str) -> None:
    assert TokenRef(f"  {TOKEN}\n").check(header) is True


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer  ",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN[:1]}",
        f"Bearer {TOKEN}x",
        f"Bearer x{TOKEN}",
        f"Bearer {TOKEN} {TOKEN}",
        f"Basic {TOKEN}",
        f"Bearer{TOKEN}",
        TOKEN,
        f"Token {TOKEN}",
        "Bearer \udcff\udcfe",
    ],
)
def test_anything_else_is_refused(header: str | None) -> None:
    """Mutations guarded: the token compared by prefix (``Bearer `` with nothing after it, or a
    truncated token, accepted), the scheme not checked, or compared case-sensitively."""
    assert TokenRef(TOKEN).check(header) is False


def test_an_empty_token_matches_nothing() -> None:
    """Mutation guarded: an empty token file would let ``Bearer `` in."""
    for header in ("Bearer ", "Bearer", "bearer  "):
        assert TokenRef("  \n").check(header) is False


def test_the_token_can_be_replaced() -> None:
    ref = TokenRef(TOKEN)
    ref.value = "other"
    assert ref.check("Bearer other") and not ref.check(f"Bearer {TOKEN}")


def test_a_token_with_undecodable_bytes_still_compares() -> None:
    """A token file holding bytes that are no UTF-8 (read with surrogateescape) matches the
    same bytes in the header. Mutation guarded: the token encoded strictly (it would raise)."""
    ref = TokenRef("tok\udcff\udcfe")
    assert ref.check("Bearer tok\udcff\udcfe") is True
    assert ref.check("Bearer tok\udcff") is False
