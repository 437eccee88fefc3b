"""CRS and ICANS grades by the ASTCT 2019 consensus (Lee DW et al., Biol Blood Marrow Transplant
2019;25:625–638), computed from what the nurse records at the bedside.

The cut-offs that the consensus names (fever from 38 °C, low-flow oxygen up to 6 L/min, the ICE bands
7–9 / 3–6 / 0–2) are arguments: the protocol hands them over, so a clinic that grades by another scale
changes its protocol, not this code. Every grade is the worst of its parts.
"""

from collections.abc import Mapping
from decimal import Decimal

from clinical.numbers import Number, exact

VASOPRESSORS = ("none", "one", "several")  # counted without vasopressin
OXYGEN = ("none", "low_flow", "high_flow", "positive_pressure")
CONSCIOUSNESS = ("alert", "wakes_spontaneously", "wakes_to_voice", "wakes_to_touch", "unrousable")
SEIZURE = ("none", "brief", "prolonged")
MOTOR = ("none", "deep_focal_weakness")
CEREBRAL_OEDEMA = ("none", "focal", "diffuse")

ICE_PARTS = {  # the Immune effector Cell-associated Encephalopathy score: its parts and their points
    "orientation": 4,  # year, month, city, hospital
    "naming": 3,  # three objects
    "commands": 1,  # follows simple commands
    "writing": 1,  # writes a standard sentence
    "attention": 1,  # counts back from 100 by 10
}


def ice_score(*, orientation: int, naming: int, commands: int, writing: int, attention: int) -> int:
    """The ICE score, 0–10, from its five parts (orientation 0–4, naming 0–3, the other three 0–1)."""
    parts = {"orientation": orientation, "naming": naming, "commands": commands, "writing": writing, "attention": attention}
    for part, points in parts.items():
        if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= ICE_PARTS[part]:
            raise ValueError(f"ICE {part} scores 0 to {ICE_PARTS[part]}, not {points!r}.")
    return sum(parts.values())


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> int:
    if value not in allowed:
        raise ValueError(f"{what} is one of {', '.join(allowed)}, not {value!r}.")
    return allowed.index(value)


def crs_grade(
    *,
    temperature_c: Number | None,
    fever_masked: bool,
    hypotension: bool,
    vasopressors: str,
    vasopressin: bool,
    oxygen: str,
    oxygen_l_min: Number | None,
    fever_from_c: Number,
    low_flow_up_to_l_min: Number,
) -> int:
    """ASTCT CRS grade 0–4.

    - Fever (≥ `fever_from_c`) makes it CRS, grade 1. A fever masked by an antipyretic or tocilizumab is
      counted as present: the consensus then grades by hypotension and hypoxia, and we do not let a
      treated patient fall to grade 0 (our choice, the safer side).
    - Hypotension without vasopressors → 2; one vasopressor, or vasopressin alone → 3; several (vasopressin
      not counted) → 4. A vasopressor implies hypotension.
    - Oxygen by low-flow nasal cannula up to `low_flow_up_to_l_min` → 2; above that, or high-flow, face mask,
      non-rebreather, Venturi → 3; positive pressure (CPAP, BiPAP, intubation) → 4.
    - No fever and none masked: not CRS (grade 0), whatever the blood pressure or oxygen.
    """
    pressors = _one_of(vasopressors, VASOPRESSORS, "Vasopressors")
    support = _one_of(oxygen, OXYGEN, "Oxygen")
    fever = temperature_c is not None and exact(temperature_c, "temperature") >= exact(fever_from_c)
    if not (fever or fever_masked):
        return 0
    circulation = 4 if pressors == 2 else 3 if (pressors == 1 or vasopressin) else 2 if hypotension else 0
    if support == 1:
        flow = Decimal(0) if oxygen_l_min is None else exact(oxygen_l_min, "oxygen flow")
        breathing = 3 if flow > exact(low_flow_up_to_l_min) else 2
    else:
        breathing = (0, 2, 3, 4)[support]
    return max(1, circulation, breathing)


def icans_grade(
    *,
    ice: int | None,
    consciousness: str,
    seizure: str,
    motor: str,
    cerebral_oedema: str,
    ice_lowest_for_grade: Mapping[int, int],
) -> int:
    """ASTCT ICANS grade 0–4, the worst of:

    - the ICE score by the protocol's bands, `ice_lowest_for_grade` = {1: 7, 2: 3, 3: 0} in the consensus
      (10 → 0, 7–9 → 1, 3–6 → 2, 0–2 → 3); `ice` None when the patient cannot be tested (unrousable);
    - level of consciousness: wakes spontaneously → 1, to voice → 2, only to touch → 3, unrousable → 4;
    - seizure: brief, resolving quickly (or non-convulsive on EEG, resolving with treatment) → 3; prolonged
      (> 5 min) or repeated without return to baseline → 4;
    - deep focal motor weakness (hemiparesis, paraparesis) → 4;
    - raised intracranial pressure / cerebral oedema: focal on imaging → 3; diffuse, posturing, VI nerve
      palsy, papilloedema or Cushing's triad → 4.
    """
    grades = [
        _one_of(consciousness, CONSCIOUSNESS, "Level of consciousness"),
        (0, 3, 4)[_one_of(seizure, SEIZURE, "Seizure")],
        (0, 4)[_one_of(motor, MOTOR, "Motor findings")],
        (0, 3, 4)[_one_of(cerebral_oedema, CEREBRAL_OEDEMA, "Cerebral oedema")],
    ]
    if ice is not None:
        if isinstance(ice, bool) or not isinstance(ice, int) or not 0 <= ice <= sum(ICE_PARTS.values()):
            raise ValueError(f"The ICE score is 0 to 10, not {ice!r}.")
        # From protocol JSON the keys arrive as text ("1": 7).
        lowest = {int(grade): int(score) for grade, score in ice_lowest_for_grade.items()}
        if sorted(lowest) != [1, 2, 3] or not sum(ICE_PARTS.values()) > lowest[1] > lowest[2] > lowest[3] >= 0:
            raise ValueError("ICE bands give the lowest score of grades 1, 2 and 3, falling.")
        if ice < sum(ICE_PARTS.values()):
            grades.append(next(grade for grade in (1, 2, 3) if ice >= lowest[grade] or grade == 3))
    return max(grades)


def highest_grade(*, grades) -> int | None:
    """The highest of the grades recorded so far (None when none was recorded: nothing to review yet)."""
    grades = list(grades or ())
    for grade in grades:
        if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= 4:
            raise ValueError(f"A grade is 0 to 4, not {grade!r}.")
    return max(grades) if grades else None
