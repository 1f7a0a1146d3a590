"""The hub's pages in a real browser: ML Hub's three scenarios end to end by clicking.

Playwright drives Debian's Chromium against hubs started with the shipped config and real
Docker. Screenshots of the main pages are saved under ``.mlhub/test-artifacts/screenshots``;
with ``MLHUB_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/images`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from devtools.hubprocess import REPO, HubProcess
from tests.support.browser import goto, log_in, new_page
from tests.support.images import STOCK_IMAGE, WORKSPACE_IMAGE

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

ARTIFACTS = REPO / ".mlhub" / "test-artifacts" / "screenshots"
DOCS_IMAGES = REPO / "docs" / "images"
ADMIN_PASSWORD = "initial-Admin-pw"
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.timeout(600)


def shot(page, name: str) -> None:
    """Save a screenshot as a test artifact (and for the README when asked to)."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("MLHUB_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / path.name)


def sign_up(page, hub: HubProcess, name: str, password: str) -> None:
    goto(page, f"{hub.url}/hub/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=signup_password]", password)
    page.fill("input[name=signup_password_confirmation]", password)
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("sent to the admin")


def authorize(admin_page, hub: HubProcess, name: str) -> None:
    goto(admin_page, f"{hub.url}/hub/home")
    admin_page.click("#nav-authorize")
    row = admin_page.locator("tr", has_text=name)
    row.get_by_role("button", name="Authorize", exact=True).click()
    expect(admin_page.locator("tr", has_text=name).get_by_role("button", name="Unauthorize")).to_be_visible()


def fill_options(
    page, *, image: str | None = None, cpu: str = "", mem: str = "", days: str = "", env: str = ""
) -> None:
    if image:
        page.select_option("#mlhub-image", image)
    page.fill("#mlhub-cpu", cpu)
    page.fill("#mlhub-mem", mem)
    page.fill("#mlhub-days", days)
    page.fill("#mlhub-env", env)


def submit_options(page) -> None:
    page.click("#spawn_form button[type=submit]")


def wait_running(page, url: str) -> None:
    """After submitting the form: the spawn-pending page, then the server (JupyterLab)."""
    page.wait_for_url(re.compile(r".*/user/.*"), timeout=TIMEOUT_MS)
    goto(page, url)


def workspaces_row(page, owner: str, name: str):
    return page.locator(f'#mlhub-workspaces tr[data-owner="{owner}"][data-name="{name}"]')


#: What both UI hubs share: the admin's password and limits.
HUB_ENV = {
    "MLHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "MLHUB_MAX_CPU_LIMIT": "1",
    "MLHUB_MAX_MEM_LIMIT": "2g",
    "MLHUB_MAX_DAYS_TO_LIVE": "30",
}


@pytest.fixture(scope="module")
def managed_hub(hub_factory) -> HubProcess:
    """Scenarios 1 and 3: users may not create named workspaces; admins create them."""
    return hub_factory(
        env={
            **HUB_ENV,
            "MLHUB_SELF_SERVICE": "false",
            "MLHUB_WORKSPACE_IMAGE": STOCK_IMAGE,
            "MLHUB_ALLOWED_IMAGES": f"{STOCK_IMAGE},{WORKSPACE_IMAGE}",
        }
    )


@pytest.fixture(scope="module")
def self_service_hub(hub_factory) -> HubProcess:
    """Scenario 2: users sign up, an admin authorizes them, they create their own workspaces."""
    return hub_factory(
        env={
            **HUB_ENV,
            "MLHUB_SELF_SERVICE": "true",
            "MLHUB_WORKSPACE_IMAGE": WORKSPACE_IMAGE,
            "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{STOCK_IMAGE}",
        }
    )


def test_scenario_admin_distributes_workspaces(browser, managed_hub: HubProcess) -> None:
    """ML Hub's "multi-user hub without self-service": the admin creates a user and a
    workspace for them, sees it with owner, resources, creator and time left, hands out the
    SSH command, stops and deletes it; the user logs in and finds it."""
    hub = managed_hub
    admin = new_page(browser)
    log_in(admin, hub, "admin", ADMIN_PASSWORD)

    admin.click("#nav-workspaces")
    admin.fill("#mlhub-user-name", "carla")
    admin.fill("#mlhub-user-password", "carla-Secret-42")
    admin.click("#mlhub-new-user button[type=submit]")
    expect(admin.locator("#mlhub-created")).to_contain_text("carla")

    # a new workspace for carla through the options form
    admin.select_option("#mlhub-for-user", "carla")
    admin.fill("#mlhub-for-name", "analysis")
    admin.click("#mlhub-new-workspace-for button[type=submit]")
    admin.wait_for_url(re.compile(r".*/hub/spawn/carla/analysis$"))
    expect(admin.locator("body")).to_contain_text("Spawning server for carla")
    fill_options(admin, image=STOCK_IMAGE, cpu="0.5", mem="512m", days="3", env="PROJECT=churn")
    shot(admin, "options-form")
    submit_options(admin)
    admin.wait_for_url(re.compile(r".*/user/carla/analysis/.*"), timeout=TIMEOUT_MS)

    goto(admin, f"{hub.url}/hub/workspaces")
    row = workspaces_row(admin, "carla", "analysis")
    expect(row.locator(".mlhub-status")).to_have_text("running")
    expect(row).to_contain_text("0.5 CPU, 512m memory")
    expect(row).to_contain_text("admin")  # created by
    expect(row.locator(".mlhub-time-left")).to_contain_text(re.compile(r"^(2 days 23 h|3 days) left$"))
    row.get_by_role("button", name="SSH access").click()
    command = admin.locator("#mlhub-ssh-command")
    expect(command).to_have_text(f"ssh -p {hub.ssh_port} carla,analysis@localhost")
    expect(admin.locator("#mlhub-ssh-keys-link")).to_have_attribute(
        "href", re.compile(r"/services/ssh/\?user=carla$")
    )
    shot(admin, "ssh-access")
    admin.locator("#mlhub-ssh-dialog .modal-footer").get_by_role("button", name="Close").click()
    expect(admin.locator("#mlhub-ssh-dialog")).to_be_hidden()
    expect(admin.locator(".modal-backdrop")).to_have_count(0)
    shot(admin, "workspaces-admin")

    # carla logs in and sees what the admin made for her, but cannot make her own
    carla = new_page(browser)
    log_in(carla, hub, "carla", "carla-Secret-42")
    goto(carla, f"{hub.url}/hub/home")
    mine = carla.locator('tr.home-server-row[data-server-name="analysis"]')
    expect(mine.locator(".mlhub-status")).to_have_text("running")
    expect(mine.locator(".mlhub-time-left")).to_contain_text("left")
    expect(carla.locator("#mlhub-new-workspace")).to_have_count(0)
    mine.get_by_role("link", name="open").click()
    carla.wait_for_url(re.compile(r".*/user/carla/analysis/.*"))
    expect(carla).to_have_title(re.compile("Jupyter"), timeout=TIMEOUT_MS)  # stock image: Jupyter Server

    # the admin stops and deletes it
    goto(admin, f"{hub.url}/hub/workspaces")
    workspaces_row(admin, "carla", "analysis").get_by_role("button", name="stop").click()
    expect(workspaces_row(admin, "carla", "analysis").locator(".mlhub-status")).to_have_text(
        "stopped", timeout=TIMEOUT_MS
    )
    admin.once("dialog", lambda dialog: dialog.accept())
    workspaces_row(admin, "carla", "analysis").get_by_role("button", name="delete").click()
    expect(workspaces_row(admin, "carla", "analysis")).to_have_count(0, timeout=TIMEOUT_MS)
    assert hub.server("carla", "analysis") is None


def test_scenario_user_hub_default_workspace_only(browser, managed_hub: HubProcess) -> None:
    """ML Hub's "user hub": a user signs up, is authorized, starts the default workspace,
    and has no way to create named ones."""
    hub = managed_hub
    user = new_page(browser)
    sign_up(user, hub, "dora", "dora-Secret-42")
    admin = new_page(browser)
    log_in(admin, hub, "admin", ADMIN_PASSWORD)
    authorize(admin, hub, "dora")
    shot(admin, "authorize-users")

    log_in(user, hub, "dora", "dora-Secret-42")
    goto(user, f"{hub.url}/hub/home")
    expect(user.locator("#mlhub-new-workspace")).to_have_count(0)
    expect(user.locator("#mlhub-named-workspaces")).to_have_count(0)
    user.click("#start")
    user.wait_for_url(re.compile(r".*/hub/spawn.*"))
    submit_options(user)
    user.wait_for_url(re.compile(r".*/user/dora/.*"), timeout=TIMEOUT_MS)
    expect(user).to_have_title(re.compile("Jupyter"), timeout=TIMEOUT_MS)
    goto(user, f"{hub.url}/hub/home")
    expect(user.locator("#mlhub-default-workspace .mlhub-status")).to_have_text("running")
    expect(user.locator("#stop")).to_be_visible()

    # the API refuses what the page does not offer
    token = hub.ensure_user("dora")
    r = hub.api("POST", "/users/dora/servers/extra", token=token, json={})
    assert r.status_code == 403, r.text

    user.click("#stop")
    expect(user.locator("#start")).to_have_text(re.compile(r"Start\s+My Server"), timeout=TIMEOUT_MS)


def test_scenario_self_service(browser, self_service_hub: HubProcess) -> None:
    """ML Hub's "multi-user hub with self-service": sign up, authorized by the admin, create
    a named workspace with the form (a refused value is shown at its field and what was typed
    is kept), see days left, open the tools, stop and delete."""
    hub = self_service_hub
    user = new_page(browser)
    sign_up(user, hub, "erik", "erik-Secret-42")
    admin = new_page(browser)
    log_in(admin, hub, "admin", ADMIN_PASSWORD)
    authorize(admin, hub, "erik")

    log_in(user, hub, "erik", "erik-Secret-42")
    goto(user, f"{hub.url}/hub/home")
    user.fill("#mlhub-new-name", "gpu-free")
    user.click("#mlhub-new-workspace button[type=submit]")
    user.wait_for_url(re.compile(r".*/hub/spawn/erik/gpu-free$"))

    # CPU over the admin's limit: refused at the field, typed values kept, nothing created
    fill_options(user, cpu="64", mem="1g", days="2", env="A=1")
    user.evaluate(
        "document.getElementById('mlhub-cpu').removeAttribute('max')"
    )  # past the browser's own check
    submit_options(user)
    error = user.locator("#mlhub-error-cpu_limit")
    expect(error).to_be_visible()
    expect(error).to_have_text("must be between 0.01 and 1 cores (got 64)")
    expect(user.locator(".spawn-error-msg")).to_contain_text("cpu_limit")
    expect(user.locator("#mlhub-cpu")).to_have_class(re.compile("is-invalid"))
    expect(user.locator("#mlhub-cpu")).to_have_value("64")
    expect(user.locator("#mlhub-mem")).to_have_value("1g")
    expect(user.locator("#mlhub-days")).to_have_value("2")
    expect(user.locator("#mlhub-env")).to_have_value("A=1")
    shot(user, "options-form-error")
    model = hub.server("erik", "gpu-free")
    assert model is None or not (model.get("ready") or model.get("pending")), model

    user.fill("#mlhub-cpu", "1")
    submit_options(user)
    user.wait_for_url(re.compile(r".*/user/erik/gpu-free/.*"), timeout=TIMEOUT_MS)
    expect(user).to_have_title(re.compile("JupyterLab"), timeout=TIMEOUT_MS)

    goto(user, f"{hub.url}/hub/home")
    row = user.locator('tr.home-server-row[data-server-name="gpu-free"]')
    expect(row.locator(".mlhub-status")).to_have_text("running")
    expect(row.locator(".mlhub-time-left")).to_contain_text(re.compile(r"^(1 day 23 h|2 days) left$"))
    shot(user, "home")
    row.get_by_role("button", name="Tools").click()
    with user.context.expect_page() as tab_info:
        row.get_by_role("link", name="VS Code").click()
    tab = tab_info.value
    tab.wait_for_load_state()
    assert "/user/erik/gpu-free/tools/vscode/" in tab.url
    expect(tab.locator("body")).not_to_contain_text("404", timeout=TIMEOUT_MS)
    tab.close()

    row.get_by_role("button", name="stop").click()
    expect(row.get_by_role("button", name="delete")).to_be_visible(timeout=TIMEOUT_MS)
    user.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="delete").click()
    expect(row).to_have_count(0, timeout=TIMEOUT_MS)
    assert hub.server("erik", "gpu-free") is None


def test_non_admin_cannot_open_admin_pages(browser, self_service_hub: HubProcess) -> None:
    hub = self_service_hub
    hub.ensure_user("fred")
    page = new_page(browser)
    sign_up(page, hub, "gina", "gina-Secret-42")
    admin = new_page(browser)
    log_in(admin, hub, "admin", ADMIN_PASSWORD)
    authorize(admin, hub, "gina")
    log_in(page, hub, "gina", "gina-Secret-42")
    expect(page.locator("#nav-workspaces")).to_have_count(0)
    expect(page.locator("#nav-authorize")).to_have_count(0)
    for path in ("/hub/workspaces", "/hub/admin", "/hub/authorize", "/hub/spawn/fred/x"):
        response = goto(page, f"{hub.url}{path}")
        assert response is not None and response.status in (403, 404), (path, response and response.status)
    # creating users is a form post with the page's XSRF token; without the scope: 403
    goto(page, f"{hub.url}/hub/home")
    status = page.evaluate(
        """async (url) => {
            const body = new URLSearchParams({name: "mallory", password: "long-enough-pw", _xsrf: window.jhdata.xsrf_token});
            const r = await fetch(url, {method: "POST", body, redirect: "manual"});
            return r.status;
        }""",
        f"{hub.url}/hub/workspaces/users",
    )
    assert status == 403
    assert hub.api("GET", "/users/mallory").status_code == 404


def test_create_user_refuses_bad_input(browser, self_service_hub: HubProcess) -> None:
    hub = self_service_hub
    admin = new_page(browser)
    log_in(admin, hub, "admin", ADMIN_PASSWORD)
    goto(admin, f"{hub.url}/hub/workspaces")
    admin.fill("#mlhub-user-name", "hank")
    admin.fill("#mlhub-user-password", "x")
    admin.evaluate("document.getElementById('mlhub-user-password').removeAttribute('minlength')")
    admin.click("#mlhub-new-user button[type=submit]")
    expect(admin.locator("#mlhub-error")).to_contain_text("password: at least")
    assert hub.api("GET", "/users/hank").status_code == 404
    admin.fill("#mlhub-user-name", "admin")
    admin.fill("#mlhub-user-password", "long-enough-pw-1")
    admin.click("#mlhub-new-user button[type=submit]")
    expect(admin.locator("#mlhub-error")).to_contain_text("name: user 'admin' already exists")


def test_pages_fit_a_narrow_screen(browser, self_service_hub: HubProcess) -> None:
    """Phone width: no horizontal scrolling on home, Workspaces and the options form."""
    hub = self_service_hub
    page = new_page(browser, width=390, height=800)
    log_in(page, hub, "admin", ADMIN_PASSWORD)
    for path, name in (
        ("/hub/home", "home-narrow"),
        ("/hub/workspaces", None),
        ("/hub/spawn/admin/narrow", None),
    ):
        goto(page, f"{hub.url}{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
        if name:
            shot(page, name)
