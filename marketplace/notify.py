"""Notifications through apprise: the app's state changes reach the person's channels.

`NotificationSettings` (one row) holds apprise URLs, encrypted. `event_notify_soon` queues
one task per event; `event_notify` claims the event atomically (notified False -> True), so
each change of state is sent at most once, however many workers see it.
"""

from __future__ import annotations

import logging

from marketplace.models import DeploymentEvent, NotificationSettings

logger = logging.getLogger(__name__)

TITLE = "Homelab"


def notification_settings() -> NotificationSettings:
    settings_row = NotificationSettings.objects.order_by("pk").first()
    return settings_row or NotificationSettings.objects.create()


def notification_settings_save(*, apprise_urls: str) -> NotificationSettings:
    """Keep the URLs; each line must be one apprise understands (ValueError says which)."""
    import apprise

    lines = [line.strip() for line in apprise_urls.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        if not apprise.Apprise().add(line):
            raise ValueError(
                f"Line {number} is not an address apprise knows (it starts with "
                f"'{line.split(':', 1)[0][:20]}'). See apprise's list of services."
            )
    row = notification_settings()
    row.apprise_urls = "\n".join(lines)
    row.save()
    return row


def send(*, title: str, body: str, urls: list[str] | None = None) -> tuple[bool, str]:
    """(sent, what happened) for the configured URLs (or `urls`)."""
    import apprise

    urls = notification_settings().urls() if urls is None else urls
    if not urls:
        return False, "No notification addresses are set up yet."
    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    try:
        ok = bool(sender.notify(title=title, body=body))
    except Exception as exc:  # apprise plugins raise their own errors; say it, never crash
        logger.info("Sending a notification failed: %s", type(exc).__name__)
        return False, "Sending failed; check the addresses and that the services answer."
    if ok:
        return True, f"Sent to {len(urls)} address{'es' if len(urls) != 1 else ''}."
    return False, "At least one address did not accept it; check the addresses."


def send_test() -> tuple[bool, str]:
    return send(title=TITLE, body="A test from your homelab: notifications work.")


def event_notify(event_id: int) -> str:
    """Send one event once: claimed by a conditional UPDATE (notified False -> True)."""
    if not notification_settings().urls():
        return "no addresses"
    if DeploymentEvent.objects.filter(pk=event_id, notified=False).update(notified=True) != 1:
        return "already sent"
    event = DeploymentEvent.objects.get(pk=event_id)
    _sent, message = send(title=TITLE, body=event.message)
    return message


def event_notify_soon(*, event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("marketplace.notify.event_notify", event_id, task_name=f"notify-{event_id}")
