"""The pure rules: the release specification's limits and the chain of identity's check character."""

import pytest
from stdnum.iso7064 import mod_37_2

from manufacturing.identity import chain_of_identity_check_character, chain_of_identity_is_valid
from manufacturing.specification import AT_LEAST, AT_MOST, BELOW, MUST_READ, qc_result_within_specification


# Limits in the shape of ../shared/domain.md "QC release specification": viability ≥ a limit, CAR expression ≥ a
# limit, vector copy number ≤ 5 copies/cell, endotoxin below a limit, sterility no growth, mycoplasma negative.
# Each limit: the value at the limit, and just past it.
@pytest.mark.parametrize(
    "comparison, limit, result, within",
    [
        (AT_LEAST, "70", "70", True),  # viability at its limit passes
        (AT_LEAST, "70", "69.9", False),  # just below fails
        (AT_LEAST, "70", "12", False),  # the 12 % viability
        (AT_LEAST, "15", "15.0", True),  # CAR expression at its limit
        (AT_LEAST, "15", "14.99", False),
        (AT_LEAST, "15", "0.5", False),  # the 0.5 % CAR expression
        (AT_MOST, "5", "5", True),  # VCN at 5 copies/cell passes
        (AT_MOST, "5", "5.01", False),
        (AT_MOST, "5", "15", False),  # the VCN 15
        (BELOW, "5", "4.99", True),  # endotoxin below 5 EU/mL
        (BELOW, "5", "5", False),  # at the limit is not below it
        (MUST_READ, "no growth", "No Growth", True),
        (MUST_READ, "no growth", "growth", False),
        (MUST_READ, "negative", "positive", False),
        (AT_LEAST, "70", "n/a", False),  # an unreadable number never passes
        (AT_MOST, "5", "NaN", False),
    ],
)
def test_qc_result_against_its_limit(comparison, limit, result, within):
    assert qc_result_within_specification(comparison, limit, result) is within


@pytest.mark.parametrize("body", ["W1234260000001", "A99992600123456", "0", "ZZZZ"])
def test_check_character_is_python_stdnums_mod_37_2(body):
    assert chain_of_identity_check_character(body) == mod_37_2.calc_check_digit(body)
    assert chain_of_identity_is_valid(body + mod_37_2.calc_check_digit(body))


def test_a_mistyped_id_fails_its_check_character():
    body = "W1234261234567"
    good = body + chain_of_identity_check_character(body)
    assert chain_of_identity_is_valid(good)
    assert chain_of_identity_is_valid(good.lower())
    assert chain_of_identity_is_valid(f"{good[:5]} {good[5:7]} {good[7:]}")
    swapped = good[:8] + good[9] + good[8] + good[10:]  # two digits swapped while typing
    one_wrong = good[:-2] + ("1" if good[-2] != "1" else "2") + good[-1]
    assert not chain_of_identity_is_valid(swapped)
    assert not chain_of_identity_is_valid(one_wrong)
    assert not chain_of_identity_is_valid("7")
    assert not chain_of_identity_is_valid("")
