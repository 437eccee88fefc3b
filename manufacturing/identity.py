"""The chain-of-identity id in the clinic's words. Its check character is ISO 7064 Mod 37-2, as ISBT 128
protects its identifiers (ICCBBA ST-028 / IG-050); the arithmetic lives once, in clinical.identifiers."""

from clinical.identifiers import has_valid_check_character, mod37_2_check_character


def normalise_chain_of_identity(text: str) -> str:
    """What a person types or a scanner reads, without spaces, hyphens or case."""
    return "".join(ch for ch in (text or "").upper() if ch not in " -\t\n")


def chain_of_identity_check_character(body: str) -> str:
    """The ISO 7064 Mod 37-2 check character for a COI body (digits and capital letters)."""
    return mod37_2_check_character(normalise_chain_of_identity(body))


def chain_of_identity_is_valid(text: str) -> bool:
    """Whether a full COI (body + check character) carries the right check character."""
    text = normalise_chain_of_identity(text)
    if "*" in text[:-1]:
        return False
    return has_valid_check_character(text)
