"""Disease activity by indication, entered item by item and totalled here, and the remission states they allow.

Weights and item ranges *define* each published score and stay in code (like Mosteller's 3600); thresholds that a
clinic or a contract may set differently (DORIS' physician global below 0.5, prednisone at most 5 mg/day, LLDAS'
SLEDAI-2K at most 4) are arguments, their values written in the protocol.

- SLEDAI-2K: Gladman DD, Ibañez D, Urowitz MB. J Rheumatol 2002;29:288–91 (24 items, weights 8/4/2/1, 0–105).
  The clinical SLEDAI leaves out the two serology items (low complement, increased DNA binding).
- DORIS remission: van Vollenhoven RF et al. Lupus Sci Med 2021;8:e000538 (clinical SLEDAI 0, physician global
  assessment < 0.5 on 0–3, prednisone ≤ 5 mg/day; antimalarials, immunosuppressants and biologics allowed).
- LLDAS: Franklyn K et al. Ann Rheum Dis 2016;75:1615–21.
- MG-ADL: Wolfe GI et al. Neurology 1999;52:1487–9 (8 items 0–3, 0–24).
- Modified Rodnan skin score: Khanna D et al. J Scleroderma Relat Disord 2017;2:11–18 (17 sites 0–3, 0–51).
- EDSS: Kurtzke JF. Neurology 1983;33:1444–52 (0, then 1.0 to 10 in steps of 0.5: there is no 0.5).
- MMT-8: Rider LG et al. Arthritis Care Res 2010;62:465–72 (IMACS: 8 muscle groups on Kendall's 0–10, 0–80).
"""

from decimal import Decimal

from clinical.numbers import Number, exact


class ItemRefused(ValueError):
    """A value a score cannot take, said about the item (`argument`) so that the record puts it by that input."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


# --- SLE ------------------------------------------------------------------------------------------

SLEDAI_2K_WEIGHTS = {
    "seizure": 8,
    "psychosis": 8,
    "organic_brain_syndrome": 8,
    "visual_disturbance": 8,
    "cranial_nerve_disorder": 8,
    "lupus_headache": 8,
    "cva": 8,
    "vasculitis": 8,
    "arthritis": 4,
    "myositis": 4,
    "urinary_casts": 4,
    "haematuria": 4,
    "proteinuria": 4,
    "pyuria": 4,
    "rash": 2,
    "alopecia": 2,
    "mucosal_ulcers": 2,
    "pleurisy": 2,
    "pericarditis": 2,
    "low_complement": 2,
    "increased_dna_binding": 2,
    "fever": 1,
    "thrombocytopenia": 1,
    "leukopenia": 1,
}
SLEDAI_SEROLOGY = ("low_complement", "increased_dna_binding")
# LLDAS' "no activity in a major organ system": renal, CNS, cardiopulmonary, vasculitis, fever, as the SLEDAI-2K
# items record them (haemolytic anaemia and gastrointestinal activity have no SLEDAI item and are not recorded).
SLEDAI_MAJOR_ORGAN = (
    "seizure",
    "psychosis",
    "organic_brain_syndrome",
    "visual_disturbance",
    "cranial_nerve_disorder",
    "lupus_headache",
    "cva",
    "vasculitis",
    "urinary_casts",
    "haematuria",
    "proteinuria",
    "pyuria",
    "pleurisy",
    "pericarditis",
    "fever",
)


def _present(items: dict, names) -> list[str]:
    for name in names:
        if not isinstance(items.get(name), bool):
            raise ItemRefused(name, f"{name.replace('_', ' ').capitalize()}: answer present or absent.")
    return [name for name in names if items[name]]


def sledai_2k(**items: bool) -> int:
    """The SLEDAI-2K total, 0–105: the weights of the items present (Gladman 2002)."""
    unknown = set(items) - set(SLEDAI_2K_WEIGHTS)
    if unknown:
        raise ValueError(f"SLEDAI-2K has no item {', '.join(sorted(unknown))}.")
    return sum(SLEDAI_2K_WEIGHTS[name] for name in _present(items, SLEDAI_2K_WEIGHTS))


CLINICAL_SLEDAI_ITEMS = tuple(name for name in SLEDAI_2K_WEIGHTS if name not in SLEDAI_SEROLOGY)


def clinical_sledai(**items: bool) -> int:
    """SLEDAI-2K without its serology items (low complement, increased DNA binding): DORIS' clinical SLEDAI, 0–101."""
    unknown = set(items) - set(CLINICAL_SLEDAI_ITEMS)
    if unknown:
        raise ValueError(f"The clinical SLEDAI has no item {', '.join(sorted(unknown))}.")
    return sum(SLEDAI_2K_WEIGHTS[name] for name in _present(items, CLINICAL_SLEDAI_ITEMS))


def major_organ_activity(**items: bool) -> bool:
    return bool(_present(items, SLEDAI_MAJOR_ORGAN))


def _physician_global(value: Number) -> Decimal:
    pga = exact(value, "physician global assessment")
    if not 0 <= pga <= 3:
        raise ItemRefused("physician_global", f"The physician global assessment is from 0 to 3, not {value}.")
    return pga


def _prednisone(value: Number) -> Decimal:
    dose = exact(value, "prednisone dose")
    if dose < 0:
        raise ItemRefused("prednisone_mg_day", f"A prednisone dose cannot be negative, not {value}.")
    return dose


def doris_remission(
    *,
    clinical_sledai: int,
    physician_global: Number,
    prednisone_mg_day: Number,
    physician_global_below: Number,
    prednisone_at_most: Number,
) -> bool:
    """DORIS 2021: clinical SLEDAI 0, physician global below `physician_global_below` (0.5), prednisone at most
    `prednisone_at_most` mg/day (5). Standard immunosuppressants and biologics are allowed and not asked."""
    return (
        clinical_sledai == 0
        and _physician_global(physician_global) < exact(physician_global_below)
        and _prednisone(prednisone_mg_day) <= exact(prednisone_at_most)
    )


def lupus_low_disease_activity(
    *,
    sledai_2k: int,
    major_organ_activity: bool,
    physician_global: Number,
    prednisone_mg_day: Number,
    sledai_at_most: Number,
    physician_global_at_most: Number,
    prednisone_at_most: Number,
) -> bool:
    """LLDAS (Franklyn 2016) as far as a visit records it: SLEDAI-2K ≤ 4 with no major organ activity, physician
    global ≤ 1, prednisone ≤ 7.5 mg/day. Not judged here: "no new activity since the last assessment" (it needs the
    previous record) and "standard immunosuppressants well tolerated" (a judgement no field holds)."""
    return (
        sledai_2k <= exact(sledai_at_most)
        and not major_organ_activity
        and _physician_global(physician_global) <= exact(physician_global_at_most)
        and _prednisone(prednisone_mg_day) <= exact(prednisone_at_most)
    )


# --- the other indications ------------------------------------------------------------------------

MG_ADL_ITEMS = (
    "talking",
    "chewing",
    "swallowing",
    "breathing",
    "brushing_combing",
    "arising_chair",
    "double_vision",
    "eyelid_droop",
)
MRSS_SITES = (
    "face",
    "chest",
    "abdomen",
    "fingers_right",
    "fingers_left",
    "hand_right",
    "hand_left",
    "forearm_right",
    "forearm_left",
    "upper_arm_right",
    "upper_arm_left",
    "thigh_right",
    "thigh_left",
    "lower_leg_right",
    "lower_leg_left",
    "foot_right",
    "foot_left",
)
MMT8_GROUPS = (
    "neck_flexors",
    "deltoid",
    "biceps",
    "gluteus_maximus",
    "gluteus_medius",
    "quadriceps",
    "wrist_extensors",
    "ankle_dorsiflexors",
)


def _item_total(score: str, names: tuple, items: dict, highest: int) -> int:
    unknown = set(items) - set(names)
    if unknown:
        raise ValueError(f"{score} has no item {', '.join(sorted(unknown))}.")
    total = 0
    for name in names:
        value = items.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= highest:
            raise ItemRefused(name, f"{score} {name.replace('_', ' ')} is a whole number from 0 to {highest}, not {value}.")
        total += value
    return total


def mg_adl(**items: int) -> int:
    """MG-ADL (Wolfe 1999): 8 items each 0–3, total 0–24."""
    return _item_total("MG-ADL", MG_ADL_ITEMS, items, 3)


def modified_rodnan_skin_score(**sites: int) -> int:
    """Modified Rodnan skin score (Khanna 2017): 17 sites each 0–3, total 0–51."""
    return _item_total("mRSS", MRSS_SITES, sites, 3)


def mmt8(**groups: int) -> int:
    """MMT-8 (Rider 2010): 8 muscle groups each 0–10 (Kendall), total 0–80; higher is stronger."""
    return _item_total("MMT-8", MMT8_GROUPS, groups, 10)


def edss_step(value: Number) -> Decimal:
    """An EDSS step (Kurtzke 1983): 0, or 1.0 to 10 in steps of 0.5 (the scale has no 0.5)."""
    step = exact(value, "EDSS")
    if step != 0 and not (1 <= step <= 10 and (step * 2) == (step * 2).to_integral_value()):
        raise ItemRefused("edss", f"EDSS is 0, or 1.0 to 10 in steps of 0.5 (Kurtzke 1983), not {value}.")
    return step


# The score a patient's indication is followed by; myositis has no single activity total here (CK and MMT-8 are
# recorded on their own: MMT-8 rises as the patient improves, the other scores fall).
SCORE_OF_INDICATION = {
    "sle": "sledai_2k",
    "lupus_nephritis": "sledai_2k",
    "myasthenia_gravis": "mg_adl",
    "systemic_sclerosis": "mrss",
    "multiple_sclerosis": "edss",
}


def indication_score(*, indication: str | None, sledai_2k=None, mg_adl=None, mrss=None, edss=None) -> Decimal | None:
    """The disease activity score of the patient's indication (SLEDAI-2K, MG-ADL, mRSS or EDSS), None for myositis,
    another indication or a score not recorded."""
    name = SCORE_OF_INDICATION.get(indication or "")
    value = {"sledai_2k": sledai_2k, "mg_adl": mg_adl, "mrss": mrss, "edss": edss}.get(name) if name else None
    if value is None:
        return None
    return edss_step(value) if name == "edss" else exact(value, name)


# --- remission ------------------------------------------------------------------------------------

REMISSION_STATES = ("doris", "lldas", "active", "not_assessable")
SLE_INDICATIONS = ("sle", "lupus_nephritis")


def remission_criteria(
    *,
    indication: str | None,
    clinical_sledai=None,
    sledai_2k=None,
    major_organ_activity=None,
    physician_global=None,
    prednisone_mg_day=None,
    doris: dict,
    lldas: dict,
) -> str:
    """What the recorded values meet: "doris", "lldas", "neither", "incomplete" (an SLE value missing) or
    "not_applicable" (DORIS and LLDAS are lupus definitions). `doris` and `lldas` are the protocol's thresholds."""
    if indication not in SLE_INDICATIONS:
        return "not_applicable"
    if None in (clinical_sledai, sledai_2k, major_organ_activity, physician_global, prednisone_mg_day):
        return "incomplete"
    if doris_remission(
        clinical_sledai=clinical_sledai, physician_global=physician_global, prednisone_mg_day=prednisone_mg_day, **doris
    ):
        return "doris"
    if lupus_low_disease_activity(
        sledai_2k=sledai_2k,
        major_organ_activity=major_organ_activity,
        physician_global=physician_global,
        prednisone_mg_day=prednisone_mg_day,
        **lldas,
    ):
        return "lldas"
    return "neither"


def remission_checked(
    *,
    state: str | None,
    drug_free: bool | None = None,
    indication: str | None,
    clinical_sledai=None,
    sledai_2k=None,
    major_organ_activity=None,
    physician_global=None,
    prednisone_mg_day=None,
    doris: dict,
    lldas: dict,
) -> str:
    """The criteria the values meet (`remission_criteria`), or ItemRefused when the state recorded claims more:
    DORIS only where DORIS holds, LLDAS only where LLDAS (or DORIS, which implies it here) holds; a drug-free
    remission only in DORIS or LLDAS and on no prednisone."""
    met = remission_criteria(
        indication=indication,
        clinical_sledai=clinical_sledai,
        sledai_2k=sledai_2k,
        major_organ_activity=major_organ_activity,
        physician_global=physician_global,
        prednisone_mg_day=prednisone_mg_day,
        doris=doris,
        lldas=lldas,
    )
    name = {"doris": "DORIS remission", "lldas": "LLDAS"}.get(state or "")
    if name and met == "not_applicable":
        raise ItemRefused("state", f"{name} is defined for SLE and lupus nephritis only: record active or not assessable.")
    if name and met == "incomplete":
        raise ItemRefused(
            "state",
            f"{name} cannot be judged: record every SLEDAI-2K item, the physician global assessment and the prednisone dose.",
        )
    if state == "doris" and met != "doris":
        raise ItemRefused(
            "state",
            f"DORIS remission needs a clinical SLEDAI of 0 (here {clinical_sledai}), a physician global below "
            f"{doris['physician_global_below']} (here {physician_global}) and prednisone at most "
            f"{doris['prednisone_at_most']} mg/day (here {prednisone_mg_day}).",
        )
    if state == "lldas" and met not in ("doris", "lldas"):
        raise ItemRefused(
            "state",
            f"LLDAS needs a SLEDAI-2K of at most {lldas['sledai_at_most']} (here {sledai_2k}) with no major organ "
            f"activity, a physician global of at most {lldas['physician_global_at_most']} (here {physician_global}) and "
            f"prednisone at most {lldas['prednisone_at_most']} mg/day (here {prednisone_mg_day}).",
        )
    if drug_free and state not in ("doris", "lldas"):
        raise ItemRefused("drug_free", "A drug-free remission is recorded only with DORIS remission or LLDAS.")
    if drug_free and prednisone_mg_day is not None and exact(prednisone_mg_day) > 0:
        raise ItemRefused("drug_free", f"Drug-free, yet prednisone {prednisone_mg_day} mg/day is recorded.")
    return met


# --- laboratory units -------------------------------------------------------------------------------


def in_unit(*, value: Number | None, reported_unit: str | None, factors: dict) -> Decimal | None:
    """`value` given in `reported_unit`, in the clinic's unit: × factors[reported_unit] (creatinine mg/dL × 88.4 = µmol/L)."""
    if value is None:
        return None
    if reported_unit is None:
        raise ItemRefused("reported_unit", "Say the unit of the value.")
    if reported_unit not in factors:
        raise ItemRefused("reported_unit", f"The unit is one of {', '.join(factors)}, not {reported_unit}.")
    return exact(value) * exact(factors[reported_unit])
