"""App names on the home network: `<app>[-<copy>].<domain>`, checked with a full match.

A name reaches the front door's configuration and a certificate, so it is a plain DNS
name and nothing else: lowercase letters, digits and '-' in dot-separated labels of 1-63
characters, no label starting or ending with '-', 253 characters at most. No wildcards,
spaces, quotes, braces or line breaks.
"""

from __future__ import annotations

import re

LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_PATTERN = rf"{LABEL}(?:\.{LABEL})*"
# an app's name has at least two labels: the app's own and the domain's
HOSTNAME_PATTERN = rf"{LABEL}(?:\.{LABEL})+"
MAX_NAME_LENGTH = 253
DEFAULT_DOMAIN = "home.arpa"


class NameProblem(ValueError):
    """A name or domain that cannot be used; the message says why and what to type."""


def _explain(kind: str, value: str, example: str) -> str:
    if not value:
        return f"The {kind} is empty; type one like {example}."
    if value != value.strip() or any(c.isspace() for c in value):
        return f"The {kind} has spaces or line breaks; type it on one line, like {example}."
    if "*" in value:
        return (
            f"The {kind} has a '*': wildcards are not allowed, each app gets its own name "
            f"(like {example})."
        )
    if any(c.isupper() for c in value):
        return f"The {kind} has capital letters; use lowercase, like {example}."
    if len(value) > MAX_NAME_LENGTH:
        return f"The {kind} is longer than {MAX_NAME_LENGTH} characters; use a shorter one."
    if ".." in value or value.startswith(".") or value.endswith("."):
        return f"The {kind} has an empty part between dots; type it like {example}."
    if any(len(label) > 63 for label in value.split(".")):
        return f"Each part of the {kind} between dots is at most 63 characters; shorten it."
    return (
        f"The {kind} may only hold lowercase letters, digits, '-' and dots (no part starting "
        f"or ending with '-'); type it like {example}."
    )


def domain_problem(value: str) -> str:
    """'' when `value` is a usable home domain, else what is wrong in plain words."""
    if len(value) <= MAX_NAME_LENGTH and re.fullmatch(DOMAIN_PATTERN, value):
        return ""
    return _explain("domain", value, "home.arpa or home.example.com")


def hostname_problem(value: str) -> str:
    """'' when `value` is a usable app name, else what is wrong in plain words."""
    if len(value) <= MAX_NAME_LENGTH and re.fullmatch(HOSTNAME_PATTERN, value):
        return ""
    if value and re.fullmatch(LABEL, value):
        return (
            f"'{value}' is one word; an app's name also carries the domain, like {value}.home.arpa."
        )
    return _explain("name", value, "vaultwarden.home.arpa")


def check_domain(value: str) -> str:
    problem = domain_problem(value)
    if problem:
        raise NameProblem(problem)
    return value


def check_hostname(value: str) -> str:
    problem = hostname_problem(value)
    if problem:
        raise NameProblem(problem)
    return value


def _as_label(text: str) -> str:
    """Lowercase letters, digits and '-' only, no '-' at either end, 63 characters at most."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:63].rstrip("-") or "app"


def default_hostname(*, slug: str, instance: str, domain: str) -> str:
    """`<app>.<domain>` for the default copy, `<app>-<copy>.<domain>` for the others."""
    first = slug if instance in ("", "default") else f"{slug}-{instance}"
    return f"{_as_label(first)}.{check_domain(domain)}"


def is_under(hostname: str, domain: str) -> bool:
    return hostname.endswith("." + domain)
