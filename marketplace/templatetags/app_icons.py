"""{% app_icon slug %}: the app's logo as an <img> (decorative: the name is beside it)."""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from marketplace.icons import app_icon_path

register = template.Library()


@register.simple_tag
def app_icon(slug: str, size: str = "") -> str:
    css = "app-icon big" if size == "big" else "app-icon"
    return format_html(
        '<span class="{}"><img src="{}" alt="" width="28" height="28" loading="lazy"></span>',
        css,
        static(app_icon_path(slug)),
    )
