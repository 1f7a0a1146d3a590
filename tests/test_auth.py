"""Logging in with the default config: NativeAuthenticator on JupyterHub 6, initial admin."""

from __future__ import annotations

from tests.support.web import post_login, signup


def test_initial_admin_logs_in_and_sees_the_options_form(hub):
    session, reply = post_login(hub.url, "admin", "initial-Admin-pw")
    assert reply.status_code == 302, reply.text
    form = session.get(f"{hub.url}/hub/spawn/admin/first", timeout=30)
    assert form.status_code == 200
    for field in (
        "image",
        "cpu_limit",
        "mem_limit",
        "gpus",
        "shm_size",
        "env",
        "is_mount_volume",
        "days_to_live",
    ):
        assert f'name="{field}"' in form.text, field
    # the admin's limits are shown next to the fields
    assert "0.01 to 1 cores" in form.text and "At most 2g" in form.text


def test_wrong_password_is_refused_with_a_message(hub):
    _, reply = post_login(hub.url, "admin", "not-the-password")
    assert reply.status_code == 200
    assert "Invalid username or password" in reply.text


def test_signed_up_user_waits_for_authorization(hub):
    assert signup(hub.url, "newbie", "Newbie-pw-123").status_code == 200
    _, reply = post_login(hub.url, "newbie", "Newbie-pw-123")
    assert "has not been authorized" in reply.text
