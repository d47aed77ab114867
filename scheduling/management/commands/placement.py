"""`manage.py placement <slug> [--policy pack]`: the seeds' "Analyzing homelab..." block."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduling import services
from scheduling.scoring import Ranking, format_score


class Command(BaseCommand):
    help = "Score every device for an app and show the ranking (nothing is deployed)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The app, e.g. vaultwarden, nextcloud, jellyfin.")
        parser.add_argument(
            "--policy", choices=["spread", "pack"], help="Override the configured policy."
        )

    def handle(self, *args, slug: str, policy: str | None = None, **options):
        try:
            ranking = services.placement_rank_app(slug=slug, policy=policy)
        except services.PlacementError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(render_table(ranking))


def render_table(ranking: Ranking) -> str:
    lines = [f"Analyzing homelab for {ranking.app.name} (policy: {ranking.policy.value})...", ""]
    if not ranking.candidates:
        return "\n".join([*lines, ranking.message])
    width = max(len("DEVICE"), *(len(c.device_name) for c in ranking.candidates))
    header = (
        f"   {'DEVICE':<{width}}  {'SCORE':>5}  {'RAM':>5}  {'STORAGE':>7}  {'CPU':>5}"
        f"  {'LOAD':>5}  {'UPTIME':>6}  VERDICT"
    )
    lines.append(header)
    for candidate in ranking.candidates:
        s = candidate.scores
        mark = "✓" if candidate.eligible else "✗"
        selected = "  ← Selected" if candidate is ranking.recommended else ""
        lines.append(
            f" {mark} {candidate.device_name:<{width}}  {format_score(candidate.score):>5}"
            f"  {format_score(s.ram):>5}  {format_score(s.storage):>7}  {format_score(s.cpu):>5}"
            f"  {format_score(s.load):>5}  {format_score(s.uptime):>6}  {candidate.label}{selected}"
        )
        detail = candidate.summary.split(": ", 1)[-1]
        lines.append(f"   {'':<{width}}  {detail}")
        for reason in candidate.reasons[1 if not candidate.eligible else 0 :]:
            lines.append(f"   {'':<{width}}  - {reason}")
    lines.append("")
    lines.append(ranking.message)
    return "\n".join(lines)
