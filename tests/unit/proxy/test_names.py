"""App names and the home domain: a full match, and plain words for what is refused."""

from __future__ import annotations

import pytest

from proxy.names import (
    NameProblem,
    check_domain,
    check_hostname,
    default_hostname,
    domain_problem,
    hostname_problem,
)

HOSTILE = [
    "*.home.arpa",
    "*",
    "vault*.home.arpa",
    "vaultwarden.home.arpa\nevil.example.com",
    "vaultwarden.home.arpa\n}\nimport /etc/passwd",
    "vaultwarden.home.arpa {",
    "{vaultwarden}.home.arpa",
    "vault warden.home.arpa",
    " vaultwarden.home.arpa",
    "vaultwarden.home.arpa;rm -rf /",
    "$(reboot).home.arpa",
    "`id`.home.arpa",
    "vaultwarden.home.arpa|nc",
    "vaultwarden.home.arpa&",
    "a'b.home.arpa",
    'a"b.home.arpa',
    "a/b.home.arpa",
    "a\\b.home.arpa",
    "a\tb.home.arpa",
    "a\rb.home.arpa",
    "a\x00b.home.arpa",
    "vaultwarden.home.arpa:443",
    "vaultwarden.home.arpa.",
    ".home.arpa",
    "a..home.arpa",
    "-vault.home.arpa",
    "vault-.home.arpa",
    "Vaultwarden.home.arpa",
    "vaultwärden.home.arpa",
    "a_b.home.arpa",
    "x" * 64 + ".home.arpa",
    ".".join(["abcdefghi"] * 26),
    "",
]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_it_refuses_hostile_names_in_plain_words(value):
    problem = hostname_problem(value)
    assert problem
    assert problem.endswith(".")
    assert "\n" not in problem and "Traceback" not in problem
    with pytest.raises(NameProblem):
        check_hostname(value)


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_it_refuses_hostile_domains_in_plain_words(value):
    assert domain_problem(value)
    with pytest.raises(NameProblem):
        check_domain(value)


@pytest.mark.parametrize(
    "value", ["vaultwarden.home.arpa", "n8n-family.home.arpa", "a.b", "x1.home.example.com"]
)
def test_it_accepts_plain_dns_names(value):
    assert check_hostname(value) == value


def test_a_single_word_domain_is_fine_but_not_a_single_word_name():
    assert check_domain("lan") == "lan"
    assert "one word" in hostname_problem("vaultwarden")


def test_the_words_name_the_problem():
    assert "wildcards are not allowed" in hostname_problem("*.home.arpa")
    assert "line breaks" in hostname_problem("a.home.arpa\nb")
    assert "capital letters" in hostname_problem("A.home.arpa")
    assert "lowercase letters, digits" in hostname_problem("a{b}.home.arpa")


def test_default_names_carry_the_copy_unless_it_is_the_default_one():
    assert default_hostname(slug="vaultwarden", instance="default", domain="home.arpa") == (
        "vaultwarden.home.arpa"
    )
    assert default_hostname(slug="n8n", instance="family", domain="example.org") == (
        "n8n-family.example.org"
    )


def test_a_default_name_stays_one_dns_label_when_slug_and_copy_are_long():
    name = default_hostname(slug="a" * 41, instance="b" * 31, domain="home.arpa")
    assert check_hostname(name) == name
    assert len(name.split(".")[0]) <= 63
