"""CRS and ICANS grades by the ASTCT 2019 consensus (Lee DW et al., Biol Blood Marrow Transplant
2019;25:625, tables 3 and 6 — also domain.md "Scoring and grading"), every boundary a row, and the
property that a worse finding never lowers a grade."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical import astct
from clinical.astct import crs_grade, icans_grade, ice_score

# The consensus cut-offs, handed over as a protocol would.
CRS_RULES = {"fever_from_c": 38, "low_flow_up_to_l_min": 6}
ICE_BANDS = {1: 7, 2: 3, 3: 0}
CALM = {
    "temperature_c": 36.8,
    "fever_masked": False,
    "hypotension": False,
    "vasopressors": "none",
    "vasopressin": False,
    "oxygen": "none",
    "oxygen_l_min": None,
}
FEVER = {**CALM, "temperature_c": 38.0}


@pytest.mark.parametrize(
    "findings, grade, source",
    [
        (CALM, 0, "no fever: no CRS"),
        ({**CALM, "temperature_c": 37.9}, 0, "37.9 °C is below the 38 °C fever"),
        (FEVER, 1, "ASTCT grade 1: fever ≥ 38 °C, exactly 38.0"),
        ({**CALM, "temperature_c": 39.6}, 1, "issue 13: Tmax 39.6 °C was accepted with CRS 0"),
        ({**FEVER, "hypotension": True}, 2, "ASTCT grade 2: fever + hypotension not needing vasopressors"),
        ({**FEVER, "oxygen": "low_flow", "oxygen_l_min": 6}, 2, "grade 2: low-flow nasal cannula ≤ 6 L/min"),
        ({**FEVER, "oxygen": "low_flow", "oxygen_l_min": 2}, 2, "grade 2: low-flow 2 L/min"),
        (
            {**FEVER, "hypotension": True, "oxygen": "low_flow", "oxygen_l_min": 3},
            2,
            "issue 13's browser test: hypotension with low-flow oxygen → CRS grade 2",
        ),
        ({**FEVER, "oxygen": "low_flow", "oxygen_l_min": 7}, 3, "grade 3: more than 6 L/min counts as high-flow"),
        ({**FEVER, "oxygen": "high_flow"}, 3, "grade 3: high-flow, face mask, non-rebreather or Venturi"),
        ({**FEVER, "hypotension": True, "vasopressors": "one"}, 3, "grade 3: one vasopressor"),
        (
            {**FEVER, "hypotension": True, "vasopressors": "one", "vasopressin": True},
            3,
            "grade 3: one vasopressor with vasopressin (vasopressin not counted)",
        ),
        ({**FEVER, "hypotension": True, "vasopressin": True}, 3, "vasopressin alone is one vasopressor"),
        ({**FEVER, "vasopressors": "several"}, 4, "grade 4: several vasopressors (not vasopressin)"),
        ({**FEVER, "oxygen": "positive_pressure"}, 4, "grade 4: CPAP, BiPAP, intubation"),
        ({**FEVER, "hypotension": True, "oxygen": "high_flow"}, 3, "the worse of hypotension (2) and hypoxia (3)"),
        ({**FEVER, "vasopressors": "one", "oxygen": "low_flow", "oxygen_l_min": 2}, 3, "the worse of 3 and 2"),
        ({**CALM, "fever_masked": True}, 1, "fever masked by antipyretic or tocilizumab: still CRS (our choice)"),
        ({**CALM, "fever_masked": True, "hypotension": True}, 2, "masked fever: graded by hypotension"),
        ({**CALM, "fever_masked": True, "oxygen": "positive_pressure"}, 4, "masked fever: graded by hypoxia"),
        ({**CALM, "temperature_c": None, "fever_masked": True, "vasopressors": "one"}, 3, "no temperature, masked"),
        ({**CALM, "hypotension": True, "vasopressors": "several"}, 0, "no fever and none masked: not CRS"),
    ],
)
def test_crs_grade(findings, grade, source):
    assert crs_grade(**findings, **CRS_RULES) == grade, source


def test_crs_cut_offs_are_the_protocols():
    assert crs_grade(**{**CALM, "temperature_c": 37.8}, fever_from_c=37.8, low_flow_up_to_l_min=6) == 1
    low_flow_5 = {**FEVER, "oxygen": "low_flow", "oxygen_l_min": 6}
    assert crs_grade(**low_flow_5, fever_from_c=38, low_flow_up_to_l_min=5) == 3


@pytest.mark.parametrize("wrong", [{"vasopressors": "two"}, {"oxygen": "mask"}, {"temperature_c": "hot"}])
def test_a_finding_outside_the_scale_is_refused(wrong):
    with pytest.raises(ValueError):
        crs_grade(**{**FEVER, **wrong}, **CRS_RULES)


NONE = {"ice": 10, "consciousness": "alert", "seizure": "none", "motor": "none", "cerebral_oedema": "none"}


@pytest.mark.parametrize(
    "findings, grade, source",
    [
        (NONE, 0, "ICE 10 and nothing else: no ICANS"),
        ({**NONE, "ice": 9}, 1, "ASTCT grade 1: ICE 7–9 (upper edge)"),
        ({**NONE, "ice": 7}, 1, "ASTCT grade 1: ICE 7–9 (lower edge)"),
        ({**NONE, "ice": 6}, 2, "ASTCT grade 2: ICE 3–6 (upper edge)"),
        ({**NONE, "ice": 4}, 2, "issue 13: ICE 4 was accepted with ICANS 0"),
        ({**NONE, "ice": 3}, 2, "ASTCT grade 2: ICE 3–6 (lower edge)"),
        ({**NONE, "ice": 2}, 3, "ASTCT grade 3: ICE 0–2 (upper edge)"),
        ({**NONE, "ice": 0}, 3, "ICE 0 in a rousable patient: grade 3"),
        ({**NONE, "ice": None, "consciousness": "unrousable"}, 4, "ASTCT grade 4: unrousable, ICE not testable"),
        ({**NONE, "ice": 0, "consciousness": "unrousable"}, 4, "ASTCT grade 4: ICE 0 and unrousable"),
        ({**NONE, "consciousness": "wakes_spontaneously"}, 1, "grade 1: depressed, wakes spontaneously"),
        ({**NONE, "consciousness": "wakes_to_voice"}, 2, "grade 2: wakes to voice"),
        ({**NONE, "consciousness": "wakes_to_touch"}, 3, "grade 3: wakes only to touch"),
        ({**NONE, "seizure": "brief"}, 3, "grade 3: a seizure that resolves quickly"),
        ({**NONE, "seizure": "prolonged"}, 4, "grade 4: life-threatening prolonged seizure (> 5 min)"),
        ({**NONE, "motor": "deep_focal_weakness"}, 4, "grade 4: deep focal motor weakness"),
        ({**NONE, "cerebral_oedema": "focal"}, 3, "grade 3: focal/local oedema on imaging"),
        ({**NONE, "cerebral_oedema": "diffuse"}, 4, "grade 4: diffuse cerebral oedema"),
        ({**NONE, "ice": 8, "seizure": "brief"}, 3, "the worst element sets the grade"),
        ({**NONE, "ice": 5, "consciousness": "wakes_spontaneously"}, 2, "the worst element sets the grade"),
    ],
)
def test_icans_grade(findings, grade, source):
    assert icans_grade(**findings, ice_lowest_for_grade=ICE_BANDS) == grade, source


def test_ice_bands_may_come_from_json_with_text_keys_and_are_checked():
    assert icans_grade(**{**NONE, "ice": 6}, ice_lowest_for_grade={"1": 7, "2": 3, "3": 0}) == 2
    with pytest.raises(ValueError):
        icans_grade(**{**NONE, "ice": 6}, ice_lowest_for_grade={1: 3, 2: 7, 3: 0})


@pytest.mark.parametrize(
    "parts, score, source",
    [
        ({"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}, 10, "ICE: full marks"),
        ({"orientation": 2, "naming": 1, "commands": 1, "writing": 0, "attention": 0}, 4, "issue 13: ICE 4"),
        ({"orientation": 0, "naming": 0, "commands": 0, "writing": 0, "attention": 0}, 0, "ICE 0"),
    ],
)
def test_ice_score_from_its_five_parts(parts, score, source):
    assert ice_score(**parts) == score, source


@pytest.mark.parametrize("part, points", [("orientation", 5), ("naming", -1), ("writing", 2), ("attention", True)])
def test_an_ice_part_outside_its_points_is_refused(part, points):
    parts = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1, part: points}
    with pytest.raises(ValueError):
        ice_score(**parts)


# --- a worse component never lowers a grade -----------------------------------------------------------

temperatures = st.one_of(st.none(), st.decimals(min_value=34, max_value=43, places=1))
crs_findings = st.fixed_dictionaries(
    {
        "temperature_c": temperatures,
        "fever_masked": st.booleans(),
        "hypotension": st.booleans(),
        "vasopressors": st.sampled_from(astct.VASOPRESSORS),
        "vasopressin": st.booleans(),
        "oxygen": st.sampled_from(astct.OXYGEN),
        "oxygen_l_min": st.one_of(st.none(), st.decimals(min_value=0, max_value=15, places=1)),
    }
)


def _worse_crs(findings: dict, draw) -> dict:
    """One finding made worse (or left as it was), everything else as it was."""
    worse = dict(findings)
    which = draw(
        st.sampled_from(["temperature_c", "fever_masked", "hypotension", "vasopressors", "vasopressin", "oxygen", "oxygen_l_min"])
    )
    if which == "temperature_c":
        current = findings["temperature_c"]
        worse[which] = (
            draw(temperatures.filter(lambda t: current is not None and t is not None and t >= current))
            if current is not None
            else draw(temperatures)
        )
    elif which in ("fever_masked", "hypotension", "vasopressin"):
        worse[which] = True
    elif which == "vasopressors":
        worse[which] = draw(st.sampled_from(astct.VASOPRESSORS[astct.VASOPRESSORS.index(findings[which]) :]))
    elif which == "oxygen":
        worse[which] = draw(st.sampled_from(astct.OXYGEN[astct.OXYGEN.index(findings[which]) :]))
    else:
        current = findings["oxygen_l_min"] or 0
        worse[which] = draw(st.decimals(min_value=current, max_value=15, places=1))
    return worse


@given(crs_findings, st.data())
def test_a_worse_crs_finding_never_lowers_the_grade(findings, data):
    worse = _worse_crs(findings, data.draw)
    assert crs_grade(**worse, **CRS_RULES) >= crs_grade(**findings, **CRS_RULES)


icans_findings = st.fixed_dictionaries(
    {
        "ice": st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
        "consciousness": st.sampled_from(astct.CONSCIOUSNESS),
        "seizure": st.sampled_from(astct.SEIZURE),
        "motor": st.sampled_from(astct.MOTOR),
        "cerebral_oedema": st.sampled_from(astct.CEREBRAL_OEDEMA),
    }
)
SCALES = {
    "consciousness": astct.CONSCIOUSNESS,
    "seizure": astct.SEIZURE,
    "motor": astct.MOTOR,
    "cerebral_oedema": astct.CEREBRAL_OEDEMA,
}


@given(icans_findings, st.data())
def test_a_worse_icans_finding_never_lowers_the_grade(findings, data):
    worse = dict(findings)
    which = data.draw(st.sampled_from(["ice", *SCALES]))
    if which == "ice":
        # A lower ICE score is worse; an ICE not tested (None) says nothing, so it is only made worse when known.
        if findings["ice"] is not None:
            worse["ice"] = data.draw(st.integers(min_value=0, max_value=findings["ice"]))
    else:
        scale = SCALES[which]
        worse[which] = data.draw(st.sampled_from(scale[scale.index(findings[which]) :]))
    assert icans_grade(**worse, ice_lowest_for_grade=ICE_BANDS) >= icans_grade(**findings, ice_lowest_for_grade=ICE_BANDS)
