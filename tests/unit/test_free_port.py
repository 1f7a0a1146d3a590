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
