"""Template filters the pages share: dates as the ward reads them."""

from datetime import date, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date

register = template.Library()


def _with_year_if_not_this_year(value, short: str, long: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        year = value.year
    elif isinstance(value, date):
        year = value.year
    else:
        return str(value)
    # "Tue 23 Nov" two years back reads as this November: a date of another year carries its year.
    return format_date(value, short if year == timezone.localdate().year else long)


@register.filter
def day(value) -> str:
    """ "Tue 23 Nov" this year, "Tue 23 Nov 2024" in any other."""
    return _with_year_if_not_this_year(value, "D d M", "D d M Y")


@register.filter
def day_time(value) -> str:
    """ "Tue 23 Nov 14:05" this year, "Tue 23 Nov 2024 14:05" in any other."""
    return _with_year_if_not_this_year(value, "D d M H:i", "D d M Y H:i")


@register.filter
def short_day(value) -> str:
    """ "23 Nov" this year, "23 Nov 2024" in any other."""
    return _with_year_if_not_this_year(value, "d M", "d M Y")


@register.filter
def short_day_time(value) -> str:
    """ "23 Nov 14:05" this year, "23 Nov 2024 14:05" in any other."""
    return _with_year_if_not_this_year(value, "d M H:i", "d M Y H:i")
