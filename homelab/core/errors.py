"""One family of errors a person can act on.

Every service raises a subclass of `HomelabError` when it cannot do what was asked:
`message` says what happened in plain words, `field` names the input at fault (or ""),
`code` is the HTTP status the API answers with (4xx for the person's input, 502 when a
device did not answer), and `fixes` lists what to do next. The API turns it into
`{"detail", "field", "fixes"}` (homelab/api.py); pages turn it into a message or a form
error (homelab.core.web). Services translate SSH and Docker failures into one of these, so
no door catches a transport error itself.
"""

from __future__ import annotations

from collections.abc import Iterable


class HomelabError(Exception):
    """What stopped an operation, in words that say what to do."""

    default_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = "",
        code: int | None = None,
        fixes: Iterable[str] | None = (),
    ):
        super().__init__(message)
        self.message = message
        self.field = field or ""
        self.code = int(code if code is not None else self.default_code)
        self.fixes = list(fixes or ())

    def as_json(self) -> dict:
        """The API's answer body; subclasses may add keys (never remove these three)."""
        return {"detail": self.message, "field": self.field, "fixes": list(self.fixes)}

    def sentence(self) -> str:
        """The message and its fixes as one paragraph, for a page."""
        return " ".join([self.message, *self.fixes]).strip()

    def __str__(self) -> str:
        return self.message

    @classmethod
    def unreachable(cls, device_name: str, detail: object, **kwargs):
        """A device that did not answer over SSH (or its Docker did not): a 502 with the fix."""
        kwargs.setdefault("code", 502)
        kwargs.setdefault(
            "fixes",
            [f"Check that {device_name} is on and connected to the network, then try again."],
        )
        return cls(f"{device_name} did not answer over SSH: {detail}", **kwargs)


def problems_answer(problems: list[dict]) -> dict:
    """The API's shape for invalid input: one sentence plus each field's problem."""
    detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return {"detail": f"Please correct: {detail}", "errors": problems}
