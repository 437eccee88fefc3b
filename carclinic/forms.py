"""What every page that writes does with a posted form: validate it, call one service, and put the
service's domain errors where the person will read them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied

from carclinic.errors import Conflict, DomainError, NotPermitted


def apply_domain_error(form: forms.Form, error: DomainError) -> None:
    """Put a DomainError's per-field messages next to their fields, and the rest at the top of the form."""
    placed = False
    for field, messages in error.field_errors.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


@dataclass(frozen=True)
class Submission:
    done: bool
    status: int = 200
    result: Any = None
    conflict: str | None = None


def form_submit(request, form: forms.Form, call: Callable[[dict], Any], *, conflict_apart: bool = False) -> Submission:
    """On a POST, validate `form` and run `call(form.cleaned_data)`. A refused role becomes 403; other domain
    errors land on the form with their HTTP status, so nothing typed is lost. With `conflict_apart`, a
    conflict (someone was first) comes back as `conflict` for the page to show above a fresh record."""
    if request.method != "POST":
        return Submission(done=False)
    if not form.is_valid():
        return Submission(done=False, status=400)
    try:
        result = call(form.cleaned_data)
    except NotPermitted as error:
        raise PermissionDenied(error.message) from error
    except Conflict as error:
        if not conflict_apart:
            apply_domain_error(form, error)
        return Submission(done=False, status=error.http_status, conflict=error.message if conflict_apart else None)
    except DomainError as error:
        apply_domain_error(form, error)
        return Submission(done=False, status=error.http_status)
    return Submission(done=True, result=result)
