"""The named calculators a record field may be computed by, and the patient facts they may read.

A protocol names a calculator and says where each of its arguments comes from (see journeys/records.py):
another field of the same record, a fact about the patient (`PatientFacts`), or a value written into the
protocol (a dose per m², a tolerance, a table of renal bands). The registry is the only list of what can
be computed; a protocol naming anything else is refused when it is loaded.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from clinical import astct, body, disease_activity, dosing, renal
from clinical.numbers import exact


@dataclass(frozen=True)
class PatientFacts:
    """What a record may be computed from besides its own fields: the latest height and weight (and when
    they were measured), the age in whole years on the day the step is recorded, and the sex."""

    height_cm: Decimal | None = None
    weight_kg: Decimal | None = None
    measured_on: date | None = None
    measurement_age_days: int | None = None
    age_years: int | None = None
    sex: str | None = None
    # The disease the patient is treated for (patients.Indication): which record fields are asked and which
    # score and remission definitions apply.
    indication: str | None = None
    # The grades the journey's monitoring days recorded so far (the physician's where they differ), for the
    # physician's review of the highest: a fact of the patient's course, not typed again.
    crs_grades: tuple[int, ...] = ()
    icans_grades: tuple[int, ...] = ()

    @property
    def female(self) -> bool | None:
        # Cockcroft–Gault's factor is for women; "other" and "unknown" give no factor to apply.
        return {"female": True, "male": False}.get(self.sex)

    def get(self, name: str):
        return getattr(self, name) if name in PATIENT_FACTS else None


PATIENT_FACTS = (
    "height_cm",
    "weight_kg",
    "measured_on",
    "measurement_age_days",
    "age_years",
    "sex",
    "female",
    "indication",
    "crs_grades",
    "icans_grades",
)


@dataclass(frozen=True)
class Calculator:
    """A pure function and what the form says about it. `formula` names the arguments in braces."""

    function: Callable
    formula: str
    arguments: tuple[str, ...]
    optional: frozenset[str] = field(default_factory=frozenset)

    def text(self, shown: dict, unit: str = "") -> str:
        """The formula with the values shown; `{unit}` is the result's unit (mg)."""
        return " ".join(self.formula.format(unit=unit, **shown).split())

    def __call__(self, **values):
        return self.function(**values)


def _renal_dose(*, dose, clearance_ml_min, bands):
    band = renal.renal_band(clearance_ml_min, bands)
    return None if band.physician_decides else exact(dose, "dose") * band.dose_percent / 100


CALCULATORS: dict[str, Calculator] = {
    "body_surface_area": Calculator(
        body.body_surface_area, "Mosteller: √({height_cm} cm × {weight_kg} kg / 3600)", ("height_cm", "weight_kg")
    ),
    "dose_from_bsa": Calculator(dosing.dose_from_bsa, "{dose_per_m2} {unit}/m² × {bsa_m2} m²", ("dose_per_m2", "bsa_m2")),
    "dose_reduced": Calculator(dosing.dose_reduced, "{dose} {unit} − {reduction_percent} %", ("dose", "reduction_percent")),
    "dose_at_percent": Calculator(dosing.dose_at_percent, "{dose} {unit} × {dose_percent} %", ("dose", "dose_percent")),
    "creatinine_clearance": Calculator(
        lambda *, age_years, weight_kg, creatinine, female, creatinine_unit: renal.creatinine_clearance(
            age_years, weight_kg, creatinine, female, creatinine_unit=creatinine_unit
        ),
        "Cockcroft–Gault: (140 − {age_years} y) × {weight_kg} kg / (72 × {creatinine} in mg/dL), × 0.85 for women",
        ("age_years", "weight_kg", "creatinine", "female", "creatinine_unit"),
    ),
    "renal_dose_percent": Calculator(
        lambda *, clearance_ml_min, bands: renal.renal_band(clearance_ml_min, bands).dose_percent,
        "the protocol's renal band for a clearance of {clearance_ml_min} mL/min",
        ("clearance_ml_min", "bands"),
    ),
    "renal_adjusted_dose": Calculator(
        _renal_dose, "{dose} × the protocol's renal band for {clearance_ml_min} mL/min", ("dose", "clearance_ml_min", "bands")
    ),
    "weight_based_dose_max": Calculator(
        lambda *, weight_kg, dose_per_kg, cap: dosing.weight_based_dose_max(weight_kg, dose_per_kg, cap),
        "{dose_per_kg}/kg × {weight_kg} kg, at most {cap}",
        ("weight_kg", "dose_per_kg", "cap"),
    ),
    "expected_total_cells": Calculator(
        lambda *, cells_per_kg, weight_kg: dosing.expected_total_cells(cells_per_kg, weight_kg),
        "{cells_per_kg}/kg × {weight_kg} kg",
        ("cells_per_kg", "weight_kg"),
    ),
    "cells_per_kg": Calculator(
        lambda *, total_cells, weight_kg: dosing.cells_per_kg(total_cells, weight_kg),
        "{total_cells} / {weight_kg} kg",
        ("total_cells", "weight_kg"),
    ),
    "ice_score": Calculator(
        astct.ice_score,
        "orientation {orientation} + naming {naming} + commands {commands} + writing {writing} + attention {attention}",
        ("orientation", "naming", "commands", "writing", "attention"),
    ),
    "crs_grade": Calculator(
        astct.crs_grade,
        "ASTCT 2019: the worst of fever, hypotension and hypoxia",
        (
            "temperature_c",
            "fever_masked",
            "hypotension",
            "vasopressors",
            "vasopressin",
            "oxygen",
            "oxygen_l_min",
            "fever_from_c",
            "low_flow_up_to_l_min",
        ),
        frozenset({"temperature_c", "oxygen_l_min"}),
    ),
    "highest_grade": Calculator(astct.highest_grade, "the highest of the grades recorded so far: {grades}", ("grades",)),
    "icans_grade": Calculator(
        astct.icans_grade,
        "ASTCT 2019: the worst of ICE score, consciousness, seizure, motor findings and cerebral oedema",
        ("ice", "consciousness", "seizure", "motor", "cerebral_oedema", "ice_lowest_for_grade"),
        frozenset({"ice"}),
    ),
    "sledai_2k": Calculator(
        disease_activity.sledai_2k,
        "SLEDAI-2K (Gladman 2002): the weights of the items present",
        tuple(disease_activity.SLEDAI_2K_WEIGHTS),
    ),
    "clinical_sledai": Calculator(
        disease_activity.clinical_sledai,
        "clinical SLEDAI: SLEDAI-2K without low complement and increased DNA binding",
        disease_activity.CLINICAL_SLEDAI_ITEMS,
    ),
    "sledai_major_organ_activity": Calculator(
        disease_activity.major_organ_activity,
        "any renal, neuropsychiatric, cardiopulmonary, vasculitis or fever item present (LLDAS)",
        disease_activity.SLEDAI_MAJOR_ORGAN,
    ),
    "mg_adl": Calculator(
        disease_activity.mg_adl, "MG-ADL (Wolfe 1999): the sum of 8 items, 0–3 each", disease_activity.MG_ADL_ITEMS
    ),
    "modified_rodnan_skin_score": Calculator(
        disease_activity.modified_rodnan_skin_score,
        "mRSS (Khanna 2017): the sum of 17 sites, 0–3 each",
        disease_activity.MRSS_SITES,
    ),
    "mmt8": Calculator(
        disease_activity.mmt8, "MMT-8 (Rider 2010): the sum of 8 muscle groups, 0–10 each", disease_activity.MMT8_GROUPS
    ),
    "indication_score": Calculator(
        disease_activity.indication_score,
        "the score of the patient's indication: SLEDAI-2K, MG-ADL, mRSS or EDSS",
        ("indication", "sledai_2k", "mg_adl", "mrss", "edss"),
        frozenset({"sledai_2k", "mg_adl", "mrss", "edss"}),
    ),
    "remission_checked": Calculator(
        disease_activity.remission_checked,
        "the remission criteria the recorded values meet (DORIS 2021, LLDAS 2016)",
        (
            "state",
            "drug_free",
            "indication",
            "clinical_sledai",
            "sledai_2k",
            "major_organ_activity",
            "physician_global",
            "prednisone_mg_day",
            "doris",
            "lldas",
        ),
        frozenset(
            {
                "state",
                "drug_free",
                "clinical_sledai",
                "sledai_2k",
                "major_organ_activity",
                "physician_global",
                "prednisone_mg_day",
            }
        ),
    ),
    "in_unit": Calculator(
        disease_activity.in_unit,
        "{value} {reported_unit} in {unit}",
        ("value", "reported_unit", "factors"),
        frozenset({"reported_unit"}),
    ),
}
