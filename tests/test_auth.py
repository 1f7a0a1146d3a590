"""Logging in with the default config: NativeAuthenticator on JupyterHub 6, initial admin."""

from __future__ import annotations

import re

import requests


def _login(hub, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    reply = session.post(
        f"{hub.url}/hub/login",
        data={"_xsrf": xsrf, "username": username, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    return session, reply


def test_initial_admin_logs_in_and_sees_the_options_form(hub):
    session, reply = _login(hub, "admin", "initial-Admin-pw")
    assert reply.status_code == 302, reply.text
    form = session.get(f"{hub.url}/hub/spawn/admin/first", timeout=30)
    assert form.status_code == 200
    for field in ("image", "cpu_limit", "mem_limit", "gpus", "shm_size", "env", "is_mount_volume", "days_to_live"):
        assert f'name="{field}"' in form.text, field
    # the admin's limits are shown next to the fields
    assert "0.01 to 1 cores" in form.text and "At most 2g" in form.text


def test_wrong_password_is_refused_with_a_message(hub):
    _, reply = _login(hub, "admin", "not-the-password")
    assert reply.status_code == 200
    assert "Invalid username or password" in reply.text


def test_signed_up_user_waits_for_authorization(hub):
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/signup", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    session.post(
        f"{hub.url}/hub/signup",
        data={"_xsrf": xsrf, "username": "newbie", "signup_password": "Newbie-pw-123", "signup_password_confirmation": "Newbie-pw-123"},
        timeout=30,
    )
    _, reply = _login(hub, "newbie", "Newbie-pw-123")
    assert "has not been authorized" in reply.text
