"""A workspace's user controls everything it serves; nothing they serve may act for a visitor.

The attack (issue "Safe for untrusted users by default"): mallory replaces what answers at her
workspace's URL — as a job (``EXECUTE_CODE``), through her own server config (kept in
``/workspace`` by ``CONFIG_BACKUP_ENABLED``) or on a port under ``/proxy/<port>/`` — with a page
whose script, opened by another user or the admin, reads the hub's pages for their ``_xsrf``
value, creates an API token for them, reads their workspace, and tosses mallory's own login
cookie at the hub. Real Chromium, real hub, real containers.

Per-user origins (the default) put her page on ``mallory.localhost``, a different origin from
the hub (``localhost``) and from every other user's workspaces, so each step fails.
"""

from __future__ import annotations

import json
import ssl
import textwrap
import time
from collections.abc import Iterator

import pytest
import requests
from cryptography import x509

from devtools import loopback
from devtools.hubprocess import HubProcess
from mlhub.core.names import workspace_name
from mlhub.hub.container import ensure_certificate
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, goto
from tests.support.images import WORKSPACE_IMAGE
from tests.support.web import login, page_xsrf

ADMIN_PASSWORD = "initial-Admin-pw"

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.timeout(900)

VICTIM_PASSWORD = "victim-Password-1"
MALLORY_PASSWORD = "mallory-Password-1"
EVIL_PORT = 9123
JOB_PORT = 9124

#: The hostile page. Every step is tried both relative to the page's own origin and on the
#: hub's URL; the outcome of each is recorded in ``window.attackResult``.
EVIL_PAGE = """<!doctype html><html><head><title>cat pictures</title></head><body>
<p>nothing to see</p>
<script>
(async () => {
  const q = new URLSearchParams(location.search);
  const victim = q.get("victim"), hub = q.get("hub"), toss = q.get("toss");
  const out = {origin: location.origin, steps: {}};
  async function attempt(name, url, init) {
    try {
      const r = await fetch(url, Object.assign({credentials: "include"}, init || {}));
      const text = await r.text();
      out.steps[name] = {status: r.status, url: r.url, text: text.slice(0, 4000)};
      return text;
    } catch (e) {
      out.steps[name] = {status: 0, error: String(e)};
      return "";
    }
  }
  for (const [where, base] of [["here", ""], ["hub", hub]]) {
    const home = await attempt(where + ":home", base + "/hub/home");
    const m = home.match(/name="_xsrf" value="([^"]+)"/) || home.match(/xsrf_token: "([^"]+)"/);
    const xsrf = m ? m[1] : "";
    await attempt(where + ":token", base + "/hub/api/users/" + victim + "/tokens?_xsrf=" + encodeURIComponent(xsrf), {
      method: "POST", headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
      body: JSON.stringify({note: "stolen"})});
    await attempt(where + ":files", base + "/user/" + victim + "/api/contents");
  }
  // cookie tossing: mallory's own login cookie, for the hub, from this page
  const host = new URL(hub).hostname;
  for (const name of ["jupyterhub-hub-login", "__Host-jupyterhub-hub-login"]) {
    for (const attrs of ["; path=/hub/", "; path=/hub/home", "; domain=" + host + "; path=/hub/",
                         "; domain=" + host + "; path=/; secure"]) {
      document.cookie = name + "=" + toss + attrs;
    }
  }
  window.attackResult = out;
  window.attackDone = true;
})();
</script></body></html>
"""

#: Mallory's server: answers every path of every request with the hostile page, no login.
EVIL_SERVER = textwrap.dedent(
    """
    import http.server, os, sys
    PAGE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "evil.html"), "rb").read()
    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)
        do_POST = do_GET
        def log_message(self, *args):
            pass
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Evil).serve_forever()
    """
)

#: Mallory's own server config: replaces jupyterhub-singleuser with her server.
EVIL_CONFIG = 'import os, sys\nos.execvp(sys.executable, [sys.executable, "/workspace/evil.py"])\n'


def _exec(docker_client, container: str, script: str) -> None:
    result = docker_client.containers.get(container).exec_run(["bash", "-c", script], user="1000")
    assert result.exit_code == 0, result.output.decode(errors="replace")


def _write_evil_files(docker_client, container: str, with_config: bool = False) -> None:
    script = (
        f"cat > /workspace/evil.html <<'EOF_HTML'\n{EVIL_PAGE}\nEOF_HTML\n"
        f"cat > /workspace/evil.py <<'EOF_PY'\n{EVIL_SERVER}\nEOF_PY\n"
    )
    if with_config:
        script += (
            "mkdir -p /workspace/.workspace/config-backup/.jupyter\n"
            "cat > /workspace/.workspace/config-backup/.jupyter/jupyter_server_config.py <<'EOF_CFG'\n"
            f"{EVIL_CONFIG}EOF_CFG\n"
        )
    _exec(docker_client, container, script)


def _container(hub: HubProcess, user: str, server: str) -> str:
    return workspace_name(hub.hub_name, user, server)


def _follow(url: str, token: str) -> requests.Response:
    """GET *url* as mallory, following redirects to other hosts with her token (requests drops
    it there); the last answer."""
    for _ in range(10):
        reply = requests.get(
            url, headers={"Authorization": f"token {token}"}, allow_redirects=False, timeout=30
        )
        if reply.status_code not in (301, 302, 303, 307, 308):
            return reply
        url = requests.compat.urljoin(url, reply.headers["Location"])
    return reply


def _start_evil_job(hub: HubProcess, docker_client, token: str, options: dict) -> None:
    """Mallory's server "job": her files written in a first start, then run as a job. Behind a
    hub a job runs beside the server (docs/decisions/jobs-in-a-hub.md): hers serves the page on
    JOB_PORT, reached under /proxy/<port>/."""
    assert hub.spawn("mallory", "job", options, token=token).status_code in (201, 202)
    _write_evil_files(docker_client, _container(hub, "mallory", "job"))
    _exec(
        docker_client,
        _container(hub, "mallory", "job"),
        f"printf 'exec python3 /workspace/evil.py {JOB_PORT}\\n' > /workspace/evil-job.sh",
    )
    hub.stop_server("mallory", "job")
    job_options = {**options, "env": {"EXECUTE_CODE": "/workspace/evil-job.sh"}}
    assert hub.spawn("mallory", "job", job_options, token=token).status_code in (201, 202)


def _start_evil_config(hub: HubProcess, docker_client, token: str, options: dict) -> None:
    """Mallory's server "cfg": her own server config (kept in /workspace), then a restart: her
    server answers at her workspace's root."""
    assert hub.spawn("mallory", "cfg", options, token=token).status_code in (201, 202)
    _write_evil_files(docker_client, _container(hub, "mallory", "cfg"), with_config=True)
    hub.stop_server("mallory", "cfg")
    assert hub.spawn("mallory", "cfg", options, token=token).status_code in (201, 202)


def _create_user(admin: requests.Session, hub: HubProcess, name: str, password: str) -> None:
    _, xsrf = page_xsrf(admin, f"{hub.url}/hub/workspaces")
    reply = admin.post(
        f"{hub.url}/hub/workspaces/users",
        data={"_xsrf": xsrf, "name": name, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302 and "created=" in reply.headers["Location"], reply.headers.get("Location")


def _login_cookie(hub: HubProcess, name: str, password: str) -> str:
    session = login(hub.url, name, password, verify=hub.verify)
    for cookie in session.cookies:
        if cookie.name.endswith("jupyterhub-hub-login"):
            return cookie.value
    raise AssertionError(f"no login cookie for {name}: {[c.name for c in session.cookies]}")


@pytest.fixture(scope="module")
def attack(hub_factory, docker_client) -> Iterator[dict]:
    hub = hub_factory(env={"MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE})
    admin = login(hub.url, "admin", ADMIN_PASSWORD)
    _create_user(admin, hub, "victim", VICTIM_PASSWORD)
    _create_user(admin, hub, "mallory", MALLORY_PASSWORD)
    hub.ensure_user("victim")
    mallory = hub.ensure_user("mallory")
    options = {"image": WORKSPACE_IMAGE, "mem_limit": "1g"}

    # the victim has a workspace with a private file in it
    assert hub.spawn("victim", "", options).status_code in (201, 202)
    _exec(docker_client, f"{hub.hub_name}-victim", "echo secret > /workspace/private.txt")

    # route 1: a job (EXECUTE_CODE) that serves the page on a port of her workspace
    _start_evil_job(hub, docker_client, mallory, options)

    # route 2: her own server config (kept in /workspace), then a restart
    _start_evil_config(hub, docker_client, mallory, options)

    # route 3: any port of her running workspace, under /proxy/<port>/
    assert hub.spawn("mallory", "port", options, token=mallory).status_code in (201, 202)
    name = _container(hub, "mallory", "port")
    _write_evil_files(docker_client, name)
    docker_client.containers.get(name).exec_run(
        ["python3", "/workspace/evil.py", str(EVIL_PORT)], user="1000", detach=True
    )

    # the links mallory sends: her workspace's address as the hub gives it out, and the same
    # path on the hub's own host
    paths = {
        "job": ("job", f"proxy/{JOB_PORT}/anything"),
        "config": ("cfg", "tree"),
        "proxy": ("port", f"proxy/{EVIL_PORT}/cats.html"),
    }
    urls = {
        route: list(
            dict.fromkeys([hub.user_url("mallory", server, path), f"{hub.url}/user/mallory/{server}/{path}"])
        )
        for route, (server, path) in paths.items()
    }
    # each route really serves the hostile page
    for route, links in urls.items():
        deadline = time.monotonic() + 60
        while True:
            reply = _follow(links[0], mallory)
            if "attackResult" in reply.text or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert "attackResult" in reply.text, f"{route}: {reply.status_code} {reply.text[:300]}"
    yield {"hub": hub, "urls": urls, "toss": _login_cookie(hub, "mallory", MALLORY_PASSWORD)}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_sync.sync_playwright() as p:
        # Chromium resolves *.localhost itself, and the test domain by this rule
        browser = p.chromium.launch(executable_path=CHROMIUM, args=TLS_FLAGS)
        yield browser
        browser.close()


def _browser_login(context, hub: HubProcess, name: str, password: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    goto(page, f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page


def _open_attack(page, attack: dict, url: str, victim: str) -> dict | None:
    """Open the link; the page's result, or None when the page never ran for this visitor."""
    hub: HubProcess = attack["hub"]
    query = f"victim={victim}&hub={hub.url}&toss={attack['toss']}"
    goto(page, f"{url}?{query}")
    page.wait_for_load_state("load")
    if "/oauth2/authorize" in page.url and page.locator("form [type=submit]").count():
        # JupyterHub asks before it lets one user into another's server; the visitor agrees
        page.click("form [type=submit]")
        page.wait_for_load_state("load")
    if "attackDone" not in page.content():
        return None  # e.g. the visitor may not use mallory's server: her page never loaded
    page.wait_for_function("window.attackDone === true", timeout=30_000)
    return page.evaluate("window.attackResult")


def _logged_in_as(page, hub: HubProcess) -> str:
    goto(page, f"{hub.url}/hub/home")
    return page.evaluate("window.jhdata && window.jhdata.user || ''")


def _stolen_tokens(hub: HubProcess, victim: str) -> list[dict]:
    reply = hub.api("GET", f"/users/{victim}/tokens")
    assert reply.status_code == 200, reply.text
    return [t for t in reply.json()["api_tokens"] if t.get("note") == "stolen"]


ROUTES = ("job", "config", "proxy")


@pytest.mark.parametrize("victim,password", [("victim", VICTIM_PASSWORD), ("admin", ADMIN_PASSWORD)])
@pytest.mark.parametrize("route", ROUTES)
def test_a_workspace_page_cannot_act_for_its_visitor(attack, browser, route, victim, password):
    hub: HubProcess = attack["hub"]
    context = browser.new_context()
    stolen_before = len(_stolen_tokens(hub, victim))
    try:
        page = _browser_login(context, hub, victim, password)
        results = [_open_attack(page, attack, link, victim) for link in attack["urls"][route]]
        # the page runs for every visitor, except under /proxy/ (the job's and the port's) for
        # those who may not use mallory's server (her server refuses them before her page loads)
        ran = [r for r in results if r is not None]
        assert bool(ran) != (route in ("job", "proxy") and victim != "admin"), results
        for result in ran:
            steps = result["steps"]
            # it runs on mallory's own origin, not the hub's
            assert result["origin"] != hub.url, json.dumps(result)[:2000]
            for where in ("here", "hub"):
                home = steps[f"{where}:home"]
                assert f'user: "{victim}"' not in home.get("text", ""), f"{where}: read {victim}'s hub page"
                assert steps[f"{where}:token"].get("status") not in (200, 201), f"{where}: made a token"
                assert "private.txt" not in steps[f"{where}:files"].get("text", ""), f"{where}: read files"
        assert len(_stolen_tokens(hub, victim)) == stolen_before, f"a token was made for {victim}"
        # the tossed cookie did not replace the visitor's session
        assert _logged_in_as(page, hub) == victim
    finally:
        context.close()


@pytest.mark.parametrize("route", ROUTES)
def test_a_workspace_page_cannot_log_a_visitor_in_as_its_owner(attack, browser, route):
    hub: HubProcess = attack["hub"]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        for link in attack["urls"][route]:
            _open_attack(page, attack, link, "nobody")
        assert _logged_in_as(page, hub) == "", "a cookie set by mallory's page logged the visitor in as her"
    finally:
        context.close()


# --- HTTPS on a real-looking domain: cookie tossing from a sibling origin -------------------

TLS_DOMAIN = loopback.TEST_DOMAIN
#: Chromium resolves the test domain like *.localhost: to loopback.
TLS_FLAGS = [
    *CHROMIUM_FLAGS,
    f"--host-resolver-rules=MAP {TLS_DOMAIN} 127.0.0.1, MAP *.{TLS_DOMAIN} 127.0.0.1",
]


@pytest.fixture(scope="module")
def tls_attack(hub_factory, docker_client, tmp_path_factory) -> Iterator[dict]:
    """A hub at https://mlhub.test:<port> with the self-signed certificate MLHub generates
    (the hub container's code), mallory's own server serving the page on https://mallory.mlhub.test."""
    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"), TLS_DOMAIN)
    hub = hub_factory(
        env={
            "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE,
            "SSL_ENABLED": "true",
            "MLHUB_SSL_CERT": cert,
            "MLHUB_SSL_KEY": key,
            "MLHUB_TEST_HOST": TLS_DOMAIN,
        }
    )
    admin = login(hub.url, "admin", ADMIN_PASSWORD, verify=False)
    _create_user(admin, hub, "victim", VICTIM_PASSWORD)
    _create_user(admin, hub, "mallory", MALLORY_PASSWORD)
    mallory = hub.ensure_user("mallory")
    _start_evil_config(hub, docker_client, mallory, {"image": WORKSPACE_IMAGE, "mem_limit": "1g"})
    toss = _login_cookie(hub, "mallory", MALLORY_PASSWORD)
    yield {"hub": hub, "urls": {"config": [hub.user_url("mallory", "cfg", "x")]}, "toss": toss}


def test_the_generated_certificate_covers_every_users_origin(tls_attack):
    hub: HubProcess = tls_attack["hub"]
    served = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", hub.port)).encode())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert names == [TLS_DOMAIN, f"*.{TLS_DOMAIN}"]


def test_over_https_the_hubs_cookies_cannot_be_tossed_from_a_users_origin(tls_attack, browser):
    hub: HubProcess = tls_attack["hub"]
    link = tls_attack["urls"]["config"][0]
    assert link.startswith(f"https://mallory.{TLS_DOMAIN}:")
    # a visitor who is logged in stays themselves
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = _browser_login(context, hub, "victim", VICTIM_PASSWORD)
        result = _open_attack(page, tls_attack, link, "victim")
        assert result is not None and result["origin"].startswith(f"https://mallory.{TLS_DOMAIN}")
        # the page did set cookies for the whole domain, and the browser sends them to the hub
        tossed = [c for c in context.cookies(f"{hub.url}/hub/home") if c["domain"].lstrip(".") == TLS_DOMAIN]
        assert any(c["name"] == "jupyterhub-hub-login" for c in tossed), context.cookies()
        assert _logged_in_as(page, hub) == "victim"
        # because the hub reads its login cookie only under a name no other origin can set
        names = {c["name"]: c for c in context.cookies(f"{hub.url}/hub/home") if c["domain"] == TLS_DOMAIN}
        assert names["__Host-jupyterhub-hub-login"]["secure"], names
    finally:
        context.close()
    # a visitor who is not logged in is not logged in as mallory
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        assert _open_attack(page, tls_attack, link, "nobody") is not None
        assert _logged_in_as(page, hub) == ""
    finally:
        context.close()


def test_hub_pages_answer_on_the_hubs_own_host_only(attack):
    """A login page on mallory's origin would hand her page the visitor's hub session there."""
    hub: HubProcess = attack["hub"]
    on_her_host = hub.user_origin("mallory") + "/hub/login"
    reply = requests.get(on_her_host, allow_redirects=False, timeout=30)
    assert reply.status_code == 302 and reply.headers["Location"] == f"{hub.url}/hub/login"
    posted = requests.post(on_her_host, data={"username": "victim", "password": VICTIM_PASSWORD}, timeout=30)
    assert posted.status_code == 403 and "own address" in posted.text
    api = requests.get(
        hub.user_origin("mallory") + "/hub/api/users",
        headers={"Authorization": f"token {hub.token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert api.status_code == 302  # not answered there, even with a valid token
    # the hub's own host and the services are unaffected
    assert requests.get(f"{hub.url}/hub/login", timeout=30).status_code == 200


def test_turning_per_user_origins_off_warns_admins_and_the_log(hub_factory):
    hub = hub_factory(env={"MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLHUB_USER_SUBDOMAINS": "false"})
    assert "Per-user origins are off (MLHUB_USER_SUBDOMAINS=false)" in hub.log_tail(400)
    admin = login(hub.url, "admin", ADMIN_PASSWORD)
    page = admin.get(f"{hub.url}/hub/home", timeout=30)
    assert 'id="mlhub-single-origin-warning"' in page.text and "create API tokens" in page.text
    _create_user(admin, hub, "plain", VICTIM_PASSWORD)
    user_page = login(hub.url, "plain", VICTIM_PASSWORD).get(f"{hub.url}/hub/home", timeout=30)
    assert user_page.status_code == 200 and "mlhub-single-origin-warning" not in user_page.text
    # workspaces are then on the hub's origin
    assert hub.user_url("plain") == f"{hub.url}/user/plain/"
