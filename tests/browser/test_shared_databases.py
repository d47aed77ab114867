"""Issue 5's person, in a real browser against the real server and the lab's real servers.

1. `manage.py serve` with a fresh data directory; first-run account; lab-server-2 added.
2. Deploy Nextcloud, then Paperless-ngx, then n8n with the wizard and no settings but a free
   port and a name: the first wizard says "No PostgreSQL on lab-server-2 yet: will start a
   shared one", the next ones "Will use the shared PostgreSQL on lab-server-2 (saves about
   N MB)"; its compose preview shows the shared server, or the bundled one while "Give this
   app its own database server" is ticked. Each ends ready, and its page says which
   database and login it got.
3. Shared databases lists one PostgreSQL on lab-server-2 with the three apps' databases
   (and the Redis Paperless shares), its measured memory and what it saves; the dashboard
   says "Saved N MB" (N > 0) with how it was measured. On the device: one PostgreSQL
   container for the three apps.
4. Remove the three with "Delete my data": the last app's page offers to keep the shared
   PostgreSQL; left unticked, the shared servers go with the last app.

Screenshots: test-artifacts/browser/pool-*.png.
"""

from __future__ import annotations

import re
import secrets as pysecrets

import pytest

from tests.browser.steps import ADMIN_PASSWORD, Visit, sign_up_and_add_device, take_our_key_off
from tests.browser.test_first_run import chromium, server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.lab]

DEVICE = "lab-server-2"
APPS = (("nextcloud", "Nextcloud"), ("paperless-ngx", "Paperless-ngx"), ("n8n", "n8n"))
POOL_PROJECTS = ("hl-pool-postgres", "hl-pool-mariadb", "hl-pool-redis")  # the default prefix


def _compose_projects(lab, prefix: str) -> set[str]:
    out = lab.exec(
        DEVICE, ["docker", "ps", "-a", "--format", '{{.Label "com.docker.compose.project"}}']
    ).stdout.split()
    return {p for p in out if p.startswith(prefix)}


def _remove_projects(lab, projects) -> None:
    """What a failed run leaves on the shared lab device: containers and volumes by label."""
    for project in projects:
        label = f"label=com.docker.compose.project={project}"
        ids = lab.exec(DEVICE, ["docker", "ps", "-aq", "--filter", label]).stdout.split()
        if ids:
            lab.exec(DEVICE, ["docker", "rm", "-f", "-v", *ids])
        vols = lab.exec(DEVICE, ["docker", "volume", "ls", "-q", "--filter", label]).stdout.split()
        if vols:
            lab.exec(DEVICE, ["docker", "volume", "rm", *vols])


def test_three_apps_share_one_postgresql_as_a_person_sees_it(server, chromium, lab, tmp_path):  # noqa: F811
    from marketplace.recipes import load_catalog
    from tests.lab.images import build_and_push_recipe_images

    build_and_push_recipe_images(lab, load_catalog([]), verbose=False)
    lab_device = lab.device(DEVICE)
    # a server of an earlier, interrupted run would hold the default pool's names
    # (only one lab session runs at a time, so what is there was left by an earlier one)
    leftovers = _compose_projects(lab, "hl-pool-")
    if leftovers:
        print(f"removing shared servers left on {DEVICE} by an earlier run: {sorted(leftovers)}")
        _remove_projects(lab, leftovers)
    assert not _compose_projects(lab, "hl-pool-"), "the leftovers could not be removed"
    visit = Visit(chromium, "pool-")
    page, shot = visit.page, visit.shot

    tag = pysecrets.token_hex(2)
    instances = {slug: f"s{tag}{n}" for n, (slug, _) in enumerate(APPS)}
    try:
        sign_up_and_add_device(page, server, lab_device, DEVICE)

        # 2. three apps, no database settings
        pages = {}
        for n, (slug, name) in enumerate(APPS):
            page.goto(f"{server}/apps/{slug}/deploy/")
            page.get_by_text(f"Recommended: {DEVICE}").wait_for(timeout=60_000)
            option = page.locator(".device-option.recommended").inner_text()
            if n == 0:
                assert f"No PostgreSQL on {DEVICE} yet: will start a shared one (about" in option
            else:
                assert f"Will use the shared PostgreSQL on {DEVICE} (saves about" in option
            if slug == "paperless-ngx":
                assert f"No Redis on {DEVICE} yet: will start a shared one" in option, option
            shot(f"{n + 1}1-wizard-{slug}")
            page.get_by_text("Advanced", exact=True).click()
            preview = page.locator("#compose-preview")
            if n == 0:
                # the compose preview is what deploying writes: the shared server, or with
                # "its own database server" ticked, the bundled one; the sentences follow
                assert "hl-pool-postgres" in preview.inner_text()
                assert "postgres:16-alpine" not in preview.inner_text()
                own = page.locator(".device-option.recommended .own-database-sentence")
                pool = page.locator(".device-option.recommended .pool-sentence").first
                assert not own.is_visible() and pool.is_visible()
                page.get_by_label("Give this app its own database server").check()
                preview.get_by_text("postgres:16-alpine").wait_for()
                assert own.is_visible() and not pool.is_visible()
                shot("10-own-database-server")
                page.get_by_label("Give this app its own database server").uncheck()
                page.wait_for_function(
                    "() => !document.querySelector('#compose-preview').innerText"
                    ".includes('postgres:16-alpine')"
                )
            page.fill("#id_port_web", str(20000 + pysecrets.randbelow(20000)))
            page.fill("#id_instance", instances[slug])
            page.get_by_role("button", name=f"Deploy {name}").click()
            page.wait_for_url(re.compile(r".*/deployments/\d+/$"), timeout=60_000)
            page.locator(".outcome-ready").wait_for(timeout=300_000)
            pages[slug] = page.url
            page.reload()
            databases = page.locator("#databases").inner_text()
            assert f"Uses the shared PostgreSQL on {DEVICE}: its own database" in databases
            shot(f"{n + 1}2-ready-{slug}")

        # 3. one shared PostgreSQL with three databases; measured memory and savings
        assert len(_compose_projects(lab, "hl-pool-postgres")) == 1
        page.get_by_role("link", name="Shared databases").first.click()
        section = page.locator("section.panel", has_text=f"PostgreSQL 16 on {DEVICE}")
        assert section.count() == 1
        rows = section.locator("tbody tr")
        assert rows.count() == 3
        listed = section.inner_text()
        for slug, name in APPS:
            assert f"{name} ({instances[slug]})" in listed, listed
        assert page.locator("section.panel", has_text=f"Redis 7 on {DEVICE}").count() == 1
        # memory is measured by the worker's next poll of the device (every 30 s)
        for _ in range(45):
            if "not measured yet" not in section.inner_text():
                break
            page.wait_for_timeout(2_000)
            page.reload()
            section = page.locator("section.panel", has_text=f"PostgreSQL 16 on {DEVICE}")
        text = section.inner_text()
        assert "not measured yet" not in text, text
        assert re.search(r"It uses [\d.]+ MB of memory, [\d.]+ MB less than 3 separate servers would", text), text
        assert "open" in text  # connections per database
        shot("41-shared-databases")
        page.get_by_role("link", name="Dashboard").first.click()
        saved = page.locator(".savings").inner_text()
        match = re.search(r"Saved (\d+) MB of memory by sharing databases", saved)
        assert match and int(match.group(1)) > 0, saved
        assert "Measured on your devices" in saved
        shot("42-dashboard")

        # 4. remove all three with their data; the shared servers go with the last app
        for slug, _ in APPS:
            page.goto(pages[slug])
            page.get_by_role("link", name="Remove").click()
            keep = page.get_by_label(f"Keep the shared PostgreSQL on {DEVICE} running")
            # offered for the last app on the server only; left unticked it goes too
            assert keep.count() == (1 if slug == "n8n" else 0)
            if slug == "n8n":
                shot("43-remove-the-last-app")
            page.get_by_role("button", name="Delete my data").click()
            # a job: its page (Activity) follows it until it has succeeded
            page.wait_for_url(re.compile(r".*/activity/\d+/$"), timeout=60_000)
            page.locator("#job-status[data-status='succeeded']").wait_for(timeout=180_000)
        page.get_by_role("link", name="Shared databases").first.click()
        assert page.get_by_text("No shared database server yet").is_visible()
        shot("44-all-removed")
        assert _compose_projects(lab, "hl-pool-") == set()
    finally:
        visit.close()
        _remove_projects(lab, [f"hl-{slug}-{i}" for slug, i in instances.items()])
        _remove_projects(lab, POOL_PROJECTS)
        take_our_key_off(lab, DEVICE, tmp_path / "data")

    visit.assert_private(server, lab_device.password, ADMIN_PASSWORD)
