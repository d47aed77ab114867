"""A finished look (issue 14, item 9): app logos, a favicon, our own 404 and 500 pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from marketplace.icons import FALLBACK_ICON, SIMPLE_ICONS, app_icon_path
from marketplace.recipes import clear_catalog_cache, load_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def builtin_catalog(settings):
    settings.HOMELAB_RECIPE_DIRS = []
    clear_catalog_cache()
    yield
    clear_catalog_cache()


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-123"))
    return client


def test_every_catalog_recipe_has_an_icon_file():
    recipes = load_catalog().recipes
    assert len(recipes) >= 15
    for slug in recipes:
        assert finders.find(app_icon_path(slug)), f"{slug}: {app_icon_path(slug)} is missing"


def test_the_logos_are_the_vendored_simple_icons_and_the_rest_get_the_neutral_icon():
    assert finders.find(FALLBACK_ICON)
    assert app_icon_path("navidrome") == FALLBACK_ICON
    for slug, name in SIMPLE_ICONS.items():
        assert app_icon_path(slug).endswith(f"/{name}.svg")
        assert "<svg" in open(finders.find(app_icon_path(slug))).read()


def test_the_catalog_cards_show_logos_not_emoji(signed_in):
    html = signed_in.get("/apps/").content.decode()
    assert 'src="/static/vendor/simple-icons-16.37.0/vaultwarden.svg"' in html
    assert "🔐" not in html


@pytest.mark.parametrize("path", ["/apps/vaultwarden/", "/apps/vaultwarden/deploy/"])
def test_the_app_page_and_the_wizard_show_the_logo(signed_in, path):
    html = signed_in.get(path).content.decode()
    assert "simple-icons-16.37.0/vaultwarden.svg" in html


def test_every_page_links_a_favicon_that_answers(signed_in):
    html = signed_in.get("/apps/").content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', html).group(1)
    response = signed_in.get(href)
    assert response.status_code == 200
    assert b"<svg" in b"".join(
        response.streaming_content if response.streaming else [response.content]
    )


def test_a_missing_page_answers_404_with_our_page(signed_in, settings):
    settings.DEBUG = False
    response = signed_in.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We can't find that page" in html
    assert 'href="/deployments/"' in html  # inside our layout, with a way on


def test_the_500_page_renders_without_a_request():
    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html
    assert "Your apps and devices keep running" in html
