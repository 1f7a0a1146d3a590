"""Cross-site request forgery against the hub's admin actions, in a real browser.

The admin is logged in to a real hub in Chromium and opens a page of an attacker (served
by the test on another port of 127.0.0.1): images, a fetch and an auto-submitted GET form
aim at NativeAuthenticator's authorize / discard URLs. None of it may change who is
authorized; the admin's own button on the Authorize Users page still works.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devtools.hubprocess import HubProcess, free_port
from tests.support.browser import goto, log_in, new_page
from tests.support.web import create_user, login, login_state, signup

ADMIN_PASSWORD = "initial-Admin-pw"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = pytest.mark.timeout(600)
PASSWORD = "Secret-pw-42"


@contextmanager
def attacker_site(page_html: str) -> Iterator[str]:
    """Serve *page_html* at http://127.0.0.1:<port>/ until the block ends."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def attack_page(hub: str) -> str:
    """Images and a no-xsrf POST at the admin actions, then a GET form submitted by script."""
    images = "".join(
        f'<img src="{hub}/hub/{path}">'
        for path in ("authorize/stranger1", "authorize/victim", "authorize/admin", "discard/pending")
    )
    return f"""<!doctype html><html><head><title>cute cats</title></head><body>
{images}
<form id="nav" method="GET" action="{hub}/hub/authorize/stranger2"></form>
<script>
const loaded = [...document.images].map(img => img.complete ? Promise.resolve() :
    new Promise(done => {{ img.onload = done; img.onerror = done; }}));
const posts = ["authorize/stranger3", "discard/pending"].map(path =>
    fetch("{hub}/hub/" + path, {{method: "POST", mode: "no-cors", credentials: "include",
        body: new URLSearchParams({{authorized: "1"}})}}).catch(() => null));
Promise.all([...loaded, ...posts]).then(() => {{
    document.title = "sent";
    setTimeout(() => document.getElementById("nav").submit(), 200);
}});
</script></body></html>"""


@pytest.fixture(scope="module")
def csrf_hub(hub_factory) -> HubProcess:
    hub = hub_factory(env={"MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD})
    admin = login(hub.url, "admin", ADMIN_PASSWORD)
    for name in ("stranger1", "stranger2", "stranger3", "pending", "clicked", "dropped"):
        assert signup(hub.url, name, PASSWORD).status_code == 200
    create_user(admin, hub.url, "victim", PASSWORD)
    return hub


def test_admin_visiting_an_attackers_page_authorizes_and_removes_no_one(
    browser,  # noqa: F811
    csrf_hub: HubProcess,
) -> None:
    hub = csrf_hub
    page = new_page(browser)
    log_in(page, hub, "admin", ADMIN_PASSWORD)
    with attacker_site(attack_page(hub.url)) as evil:
        goto(page, evil)
        expect(page).to_have_title("sent")
        # the auto-submitted form reached the hub (answered, whatever the answer)
        page.wait_for_url(re.compile(re.escape(hub.url) + "/hub/"), wait_until="commit", timeout=60_000)
        page.wait_for_load_state()
    state = {
        name: login_state(hub.url, name, PASSWORD)
        for name in ("stranger1", "stranger2", "stranger3", "pending", "victim")
    }
    state["admin"] = login_state(hub.url, "admin", ADMIN_PASSWORD)
    assert state == {
        "stranger1": "not authorized",
        "stranger2": "not authorized",
        "stranger3": "not authorized",
        "pending": "not authorized",  # still there, not discarded
        "victim": "in",
        "admin": "in",
    }
    # typed into the address bar by the admin: still nothing happens, the page says why
    admin = login(hub.url, "admin", ADMIN_PASSWORD)
    for path in ("authorize/stranger1", "discard/pending", "authorize/victim"):
        reply = admin.get(f"{hub.url}/hub/{path}", allow_redirects=False, timeout=30)
        assert reply.status_code == 405, (path, reply.status_code)
        assert "button on the Authorize Users page" in reply.text
    assert login_state(hub.url, "stranger1", PASSWORD) == "not authorized"
    assert login_state(hub.url, "victim", PASSWORD) == "in"


def test_admin_buttons_authorize_unauthorize_and_discard(browser, csrf_hub: HubProcess) -> None:  # noqa: F811
    hub = csrf_hub
    page = new_page(browser)
    log_in(page, hub, "admin", ADMIN_PASSWORD)
    goto(page, f"{hub.url}/hub/authorize")
    row = page.locator("tr", has_text="clicked")
    row.get_by_role("button", name="Authorize", exact=True).click()
    expect(page.locator("tr", has_text="clicked").get_by_role("button", name="Unauthorize")).to_be_visible()
    assert login_state(hub.url, "clicked", PASSWORD) == "in"

    page.locator("tr", has_text="clicked").get_by_role("button", name="Unauthorize").click()
    expect(
        page.locator("tr", has_text="clicked").get_by_role("button", name="Authorize", exact=True)
    ).to_be_visible()
    assert login_state(hub.url, "clicked", PASSWORD) == "not authorized"

    page.locator("tr", has_text="dropped").get_by_role("button", name="Discard").click()
    expect(page.locator("tr", has_text="dropped")).to_have_count(0)
    assert login_state(hub.url, "dropped", PASSWORD) == "invalid"
