"""Logging in and signing up on a real hub: admin names, lockout, rate limits, hashing off the loop."""

from __future__ import annotations

import html
import stat

from .hubprocess import HubProcess
from .web import login_state, signup

STRANGER_PASSWORD = "Stranger-pw-42"


def test_nobody_signs_up_as_the_admin_when_no_password_is_set(hub_factory) -> None:
    """With MLHUB_ADMIN_PASSWORD empty, the hub generates the admin's password into the data
    directory (mode 600) and logs where; signing up as "admin" first is refused."""
    hub: HubProcess = hub_factory(env={"MLHUB_ADMIN_PASSWORD": ""})
    reply = signup(hub.url, "admin", STRANGER_PASSWORD)
    assert reply.status_code == 200
    assert "The name 'admin' belongs to this hub's admin and cannot be signed up for" in html.unescape(reply.text)
    assert login_state(hub.url, "admin", STRANGER_PASSWORD) == "invalid"

    path = hub.workdir / "data" / "initial-admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    generated = path.read_text().strip()
    assert len(generated) >= 16
    assert str(path) in hub.log_tail(400)
    assert generated not in hub.log_path.read_text()
    assert login_state(hub.url, "admin", generated) == "in"

    # the next start keeps the account and its password
    hub.restart()
    assert path.read_text().strip() == generated
    assert login_state(hub.url, "admin", generated) == "in"


def test_admin_name_is_refused_at_sign_up_with_a_password_set(hub: HubProcess) -> None:
    reply = signup(hub.url, "admin", STRANGER_PASSWORD)
    assert "The name 'admin' belongs to this hub's admin and cannot be signed up for" in html.unescape(reply.text)
    assert login_state(hub.url, "admin", "initial-Admin-pw") == "in"
