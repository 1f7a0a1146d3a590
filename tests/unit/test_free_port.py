"""Test ports (devtools.hubprocess.free_port) stay below the kernel's ephemeral range, where an
outgoing connection's source port could take one between the check and the hub's bind, and
are never handed out twice to live processes."""

from __future__ import annotations

from devtools.hubprocess import PORT_OWNERS, PORTS_FROM, _ephemeral_low, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_reserved() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(PORTS_FROM <= p < _ephemeral_low() for p in ports), ports
    assert all((PORT_OWNERS / str(p)).exists() for p in ports)


def test_a_hub_name_is_spared_only_while_another_live_process_owns_it() -> None:
    """The sweep of leftovers skips a test hub name only when a live process other than this one
    claimed it (the same pid-owner check as the port reservations)."""
    import os
    import secrets

    from devtools.hubprocess import OWNERS, _owned_by_another_live_process, claim_hub_name

    mine = claim_hub_name(f"mltunit{secrets.token_hex(3)}")
    assert not _owned_by_another_live_process(mine)

    theirs = f"mltunit{secrets.token_hex(3)}"
    (OWNERS / theirs).write_text(str(os.getppid()))  # the process that started the tests
    assert _owned_by_another_live_process(theirs)
    gone = next(pid for pid in range(4_000_000, 3_000_000, -1) if not os.path.exists(f"/proc/{pid}"))
    (OWNERS / theirs).write_text(str(gone))
    assert not _owned_by_another_live_process(theirs)  # its owner is gone
    assert not _owned_by_another_live_process(f"mltunit{secrets.token_hex(3)}")  # nobody's
    for name in (mine, theirs):
        os.unlink(OWNERS / name)
