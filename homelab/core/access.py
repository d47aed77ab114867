"""May this person follow this WebSocket stream? The consumers ask here.

The rules live in the web composition (homelab.permissions), a layer above every app;
it registers its check when it is imported (HomelabConfig.ready). Until then, and for a
person not signed in, the answer is no.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.db import database_sync_to_async

_check: Callable[[object, str], bool] | None = None


def register_stream_check(check: Callable[[object, str], bool]) -> None:
    global _check
    _check = check


def stream_allowed(user, stream: str) -> bool:
    if _check is None or user is None or not user.is_authenticated:
        return False
    return _check(user, stream)


async def websocket_allowed(scope, stream: str) -> bool:
    """Whether the person of this WebSocket SCOPE may follow STREAM."""
    return await database_sync_to_async(stream_allowed)(scope.get("user"), stream)
