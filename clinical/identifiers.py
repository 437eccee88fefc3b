"""Check characters of identifiers: ISBT 128 protects its identifiers, the chain-of-identity id among
them, with an ISO 7064 Mod 37-2 check character. python-stdnum computes it; we only name it."""

from stdnum.iso7064 import mod_37_2


def _plain(identifier: str) -> str:
    # Printed ids carry spaces and dashes for the eye; the check character covers the characters only.
    return "".join(identifier.split()).replace("-", "").upper()


def mod37_2_check_character(identifier: str) -> str:
    """The check character of `identifier` (0–9, A–Z or *): 'G123489654321' → 'Y'."""
    plain = _plain(identifier)
    if not plain or not all(c.isascii() and c.isalnum() for c in plain):
        raise ValueError("An identifier is letters A–Z and digits.")
    return mod_37_2.calc_check_digit(plain)


def has_valid_check_character(identifier_with_check: str) -> bool:
    """True when the last character is the right check character of the rest ('G123489654321Y')."""
    plain = _plain(identifier_with_check)
    return len(plain) >= 2 and mod_37_2.is_valid(plain)
