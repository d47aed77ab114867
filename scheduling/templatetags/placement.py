"""Small helpers for the placement pages."""

from __future__ import annotations

from django import template

from scheduling.scoring import RECOMMENDED
from scheduling.units import format_bytes, format_score

register = template.Library()

# The bars show scores (higher is better), so the labels say "score".
CRITERION_LABELS = [
    ("ram", "RAM score"),
    ("storage", "Storage score"),
    ("cpu", "CPU score"),
    ("load", "Load score (lower load, higher score)"),
    ("uptime", "Uptime score"),
]


human_bytes = register.filter("human_bytes", format_bytes)


@register.filter
def score(value) -> str:
    return format_score(value)


@register.filter
def score_level(value) -> str:
    """Colour of a 0-100 score, like the dashboard's device cards."""
    if value >= 70:
        return "green"
    if value >= 40:
        return "yellow"
    return "red"


@register.filter
def criteria(candidate) -> list[tuple[str, float]]:
    return [(label, getattr(candidate.scores, name)) for name, label in CRITERION_LABELS]


@register.filter
def card_level(candidate) -> str:
    if candidate.label == RECOMMENDED:
        return "green"
    return "yellow" if candidate.eligible else "red"


@register.filter
def sorted_join(values) -> str:
    """A set (ports, architectures) in a stable order, comma separated."""
    return ", ".join(str(v) for v in sorted(values))
