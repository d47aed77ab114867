"""Pages show a HomelabError the same way everywhere.

`show_error` puts the error where the person looks: on the form field it names (or at the
top of the form), or else as a message on the next page. It returns the status a partial
answers with, so an htmx request learns it failed.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from homelab.core.errors import HomelabError

# A device that did not answer (502) is, for the page that asked, a request that cannot
# be done now: partials answer 409 rather than a server error.
UNAVAILABLE_PAGE_STATUS = 409


def error_page_status(error: HomelabError) -> int:
    """The 4xx status for a page or partial that shows `error`."""
    return error.code if 400 <= error.code < 500 else UNAVAILABLE_PAGE_STATUS


def show_error(
    request: HttpRequest,
    error: HomelabError,
    *,
    form: forms.BaseForm | None = None,
    with_fixes: bool = True,
) -> int:
    """Show `error` on `form` (its field when the form has it, else the form's top) or as
    a django message; returns error_page_status(error).

    `with_fixes=False` when the template lists `error.fixes` itself.
    """
    text = error.sentence() if with_fixes else error.message
    if form is not None:
        form.add_error(error.field if error.field in form.fields else None, text)
    else:
        messages.error(request, text)
    return error_page_status(error)
