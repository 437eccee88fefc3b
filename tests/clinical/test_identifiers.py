"""The ISO 7064 Mod 37-2 check character of chain-of-identity ids, checked against python-stdnum's own
examples (its module docstring) and its own validator."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from clinical.identifiers import has_valid_check_character, mod37_2_check_character


@pytest.mark.parametrize(
    "identifier, check, source",
    [
        ("G123489654321", "Y", "python-stdnum stdnum/iso7064/mod_37_2.py docstring"),
        ("G1234 89 654321", "Y", "the same id as printed with spaces (ISBT 128 eye-readable form)"),
        ("g123489654321", "Y", "lower case as typed"),
    ],
)
def test_the_check_character_of_stdnums_own_example(identifier, check, source):
    assert mod37_2_check_character(identifier) == check, source
    assert has_valid_check_character(identifier + check), source


def test_a_wrong_or_missing_check_character_is_not_valid():
    assert not has_valid_check_character("G123489654321X")
    assert not has_valid_check_character("G123489654312Y")  # two digits swapped: Mod 37-2 catches it
    assert not has_valid_check_character("Y")


@pytest.mark.parametrize("identifier", ["", "COI/17", "ÄBC"])
def test_an_identifier_with_other_characters_is_refused(identifier):
    with pytest.raises(ValueError):
        mod37_2_check_character(identifier)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20))
def test_ours_agrees_with_stdnum_for_any_identifier(identifier):
    check = mod37_2_check_character(identifier)
    assert check == mod_37_2.calc_check_digit(identifier)
    assert mod_37_2.is_valid(identifier + check) and has_valid_check_character(identifier + check)
