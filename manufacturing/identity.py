"""The chain-of-identity id's check character: ISO 7064 Mod 37-2, as ISBT 128 protects its identifiers
(ICCBBA ST-028 / IG-050). python-stdnum does the arithmetic; this only names it in the clinic's words.

The lead points this at clinic/identifiers.py when that package lands.
"""

from stdnum.iso7064 import mod_37_2

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def normalise_chain_of_identity(text: str) -> str:
    """What a person types or a scanner reads, without spaces, hyphens or case."""
    return "".join(ch for ch in (text or "").upper() if ch not in " -\t\n")


def chain_of_identity_check_character(body: str) -> str:
    """The ISO 7064 Mod 37-2 check character for a COI body (digits and capital letters)."""
    body = normalise_chain_of_identity(body)
    if not body or any(ch not in _ALPHABET for ch in body):
        raise ValueError("A chain-of-identity body has only digits and capital letters.")
    return mod_37_2.calc_check_digit(body)


def chain_of_identity_is_valid(text: str) -> bool:
    """Whether a full COI (body + check character) carries the right check character."""
    text = normalise_chain_of_identity(text)
    if len(text) < 2 or any(ch not in _ALPHABET + "*" for ch in text) or "*" in text[:-1]:
        return False
    return mod_37_2.is_valid(text)
