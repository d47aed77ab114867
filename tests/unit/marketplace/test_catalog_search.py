"""One catalog search behind the catalog page and GET /api/v1/applications."""

from __future__ import annotations

import pytest
from django.urls import reverse

from marketplace.recipes import clear_catalog_cache
from marketplace.selectors import catalog_search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def builtin_catalog(settings):
    settings.HOMELAB_RECIPE_DIRS = []
    clear_catalog_cache()
    yield
    clear_catalog_cache()


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-1"))
    return client


def _slugs(recipes) -> list[str]:
    return [r.slug for r in recipes]


def test_it_matches_name_description_and_category_ignoring_case_and_spaces():
    assert _slugs(catalog_search(query="  VAULT ")) == ["vaultwarden"]
    # "security" is only vaultwarden's category word
    assert "vaultwarden" in _slugs(catalog_search(query="security"))
    assert set(_slugs(catalog_search(category="media"))) == {"jellyfin", "navidrome"}
    assert catalog_search(query="no-such-app-anywhere") == []
    assert len(catalog_search()) == 15


@pytest.mark.parametrize(
    ("q", "category"),
    [("password", ""), ("jelly", ""), (" Media ", ""), ("security", ""), ("", "media"),
     ("music", "media"), ("", "")],
)  # fmt: skip
def test_the_page_and_the_api_give_the_same_apps(signed_in, q, category):
    page = signed_in.get(reverse("app_catalog"), {"q": q, "category": category})
    params = {k: v for k, v in {"q": q, "category": category}.items() if v}
    api = signed_in.get("/api/v1/applications", params).json()
    page_slugs = _slugs(page.context["recipes"])
    assert page_slugs == [app["slug"] for app in api["applications"]]
    assert page_slugs == _slugs(catalog_search(query=q, category=category))
