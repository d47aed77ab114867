"""The one byte formatter every page, message and template filter uses."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from homelab.core.formatting import GIB, KIB, MIB, TIB, format_bytes


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "unknown"),
        (0, "0 bytes"),
        (-5, "0 bytes"),
        (512, "512 bytes"),
        (10 * KIB, "10 KB"),
        (int(7.1 * MIB), "7.1 MB"),
        (512 * MIB, "512 MB"),
        (MIB * 1023.97, "1 GB"),
        (1 * GIB, "1 GB"),
        (2 * GIB, "2 GB"),
        (int(6.1 * GIB), "6.1 GB"),
        (int(99.96 * GIB), "100 GB"),
        (int(120.4 * GIB), "120 GB"),
        (3 * TIB, "3 TB"),
    ],
)
def test_it_says_sizes_in_binary_units(size, text):
    assert format_bytes(size) == text


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{% load homelab_ui %}{{ v|human_bytes }}", "1.5 GB"),
        ("{% load homelab_ui %}{{ v|mebibytes }}", "1.5 GB"),
        ("{% load placement %}{{ v|human_bytes }}", "1.5 GB"),
        ("{% load marketplace_ui %}{{ 1536|megabytes }}", "1.5 GB"),
    ],
)
def test_every_size_filter_says_the_same(template, text):
    assert Template(template).render(Context({"v": 1536 * MIB})) == text
