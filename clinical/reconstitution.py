"""Stage 5, immune re-education: what a patient's follow-up values say about B cells, IgG and remission.

Every threshold is an argument (product data, see settings.FOLLOWUP_*). Values are read in date order;
a visit that did not measure a value (None) neither starts nor ends anything.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from clinical.numbers import Number, exact

REMISSION_STATES = ("doris", "lldas")  # DORIS remission or low disease activity (LLDAS): both count as remission
ACTIVE = "active"
NOT_ASSESSABLE = "not_assessable"


@dataclass(frozen=True)
class BCellCourse:
    """`in_aplasia`: the latest count is below the threshold (None: never counted). `aplasia_since`: the first
    count of the current or last run below it. `reconstituted_on`: the first count at or above the threshold
    after that run (None while still aplastic or never aplastic)."""

    in_aplasia: bool | None
    aplasia_since: date | None
    reconstituted_on: date | None
    latest: Decimal | None
    latest_on: date | None


def b_cell_course(counts: Sequence[tuple[date, Number | None]], *, aplasia_below_per_ul: Number) -> BCellCourse:
    """B-cell aplasia and reconstitution from CD19+ counts (/µL). Aplasia is a count below
    `aplasia_below_per_ul`; reconstitution is the first count at or above it after aplasia (Mackensen et al.,
    Nat Med 2022: B cells returned after ~110 days on average, naive and non-class-switched)."""
    threshold = exact(aplasia_below_per_ul, "aplasia threshold")
    measured = sorted(((on, exact(value, "CD19+ count")) for on, value in counts if value is not None), key=lambda c: c[0])
    if not measured:
        return BCellCourse(None, None, None, None, None)
    aplasia_since = reconstituted_on = None
    for on, value in measured:
        if value < threshold:
            if aplasia_since is None or reconstituted_on is not None:
                aplasia_since, reconstituted_on = on, None  # a new run of aplasia (a second CAR-T, rituximab)
        elif aplasia_since is not None and reconstituted_on is None:
            reconstituted_on = on
    latest_on, latest = measured[-1]
    return BCellCourse(latest < threshold, aplasia_since, reconstituted_on, latest, latest_on)


@dataclass(frozen=True)
class IgGStatus:
    hypogammaglobulinaemia: bool | None  # None: no IgG measured and no replacement recorded
    latest: Decimal | None
    latest_on: date | None
    on_replacement: bool


def igg_status(values: Sequence[tuple[date, Number | None]], *, low_below_g_l: Number, on_replacement: bool = False) -> IgGStatus:
    """Hypogammaglobulinaemia: the latest IgG below `low_below_g_l` (g/L), or the patient on IgG replacement
    (whose measured IgG is the infused one). 4 g/L is the usual replacement trigger after CD19 CAR-T
    (Hill et al., Blood 2019; Wat et al., Front Immunol 2021)."""
    threshold = exact(low_below_g_l, "IgG threshold")
    measured = sorted(((on, exact(value, "IgG")) for on, value in values if value is not None), key=lambda v: v[0])
    if not measured:
        return IgGStatus(True if on_replacement else None, None, None, on_replacement)
    latest_on, latest = measured[-1]
    return IgGStatus(on_replacement or latest < threshold, latest, latest_on, on_replacement)


@dataclass(frozen=True)
class RemissionCourse:
    """`state`: the latest assessable state (doris, lldas, active) or None. `since`: the first assessment of
    the uninterrupted run that ends in that state (a run of doris and lldas counts as one remission).
    `relapsed_on`: the first active assessment after the last remission, if the disease is active again."""

    state: str | None
    since: date | None
    relapsed_on: date | None
    ever_in_remission: bool

    @property
    def in_remission(self) -> bool:
        return self.state in REMISSION_STATES


def remission_course(assessments: Sequence[tuple[date, str | None]]) -> RemissionCourse:
    """Remission state, since when, and relapse (active disease after remission) from dated assessments.
    "Not assessable" (and a missing answer) leaves the run as it was: it neither breaks nor proves it."""
    known = sorted(((on, state) for on, state in assessments if state and state != NOT_ASSESSABLE), key=lambda a: a[0])
    if not known:
        return RemissionCourse(None, None, None, False)
    state = since = relapsed_on = None
    ever = False
    for on, value in known:
        in_remission = value in REMISSION_STATES
        if in_remission:
            if state not in REMISSION_STATES:
                since, relapsed_on = on, None
            ever = True
        else:
            if state in REMISSION_STATES or state is None:
                since = on
            if ever and state in REMISSION_STATES:
                relapsed_on = on
        state = value
    return RemissionCourse(state, since, relapsed_on, ever)


def malignancy_reported(value) -> bool:
    """A record's `new_malignancy`: a yes (True, "yes") or, in protocols that ask it as a choice, a suspected or
    confirmed one. Either is reported (T-cell malignancy is a labelled risk of CAR-T)."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value in ("yes", "suspected", "confirmed")
