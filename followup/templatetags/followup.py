from django import template

register = template.Library()

WORDS = {"doris": "DORIS remission", "lldas": "LLDAS (low disease activity)", "active": "Active disease"}


@register.filter
def remission_word(state: str) -> str:
    return WORDS.get(state, state)
