"""The follow-up selector over real step records: what it derives, and that it costs one query whatever the history."""

from datetime import timedelta

import pytest

from followup import selectors
from journeys.models import Step
from tests.factories import PatientFactory


@pytest.mark.django_db
def test_status_from_the_shipped_protocols_stage_5_records(in_follow_up):
    in_follow_up.record("visit-day-14", 14, cd19_b_cells="0", igg="6.2", disease_activity="4")
    in_follow_up.record("visit-day-28", 28, cd19_b_cells="0", igg="5.1")
    in_follow_up.record("remission-month-3", 90, remission="doris", disease_activity="0")
    in_follow_up.record("visit-month-3", 90, cd19_b_cells="0.5", igg="3.8")
    in_follow_up.record("visit-month-6", 182, cd19_b_cells="45", igg="4.4")
    in_follow_up.record("remission-month-12", 365, remission="lldas", disease_activity="2")
    # An older record without igg_replacement, new_malignancy or remission_drug_free: tolerated.
    status = selectors.followup_status(journey=in_follow_up)
    day0 = in_follow_up.day0
    assert status.b_cells.in_aplasia is False
    assert status.b_cells.aplasia_since == day0 + timedelta(days=14)
    assert status.b_cells.reconstituted_on == day0 + timedelta(days=182)
    assert status.igg.hypogammaglobulinaemia is False and str(status.igg.latest) == "4.4"
    assert (status.remission.state, status.remission.since) == ("lldas", day0 + timedelta(days=90))
    assert status.remission.relapsed_on is None and status.drug_free is None and status.malignancies == []
    assert [visit.day for visit, _ in status.series("cd19_b_cells")] == [14, 28, 90, 182]


@pytest.mark.django_db
def test_relapse_replacement_and_malignancy(in_follow_up):
    in_follow_up.record("remission-month-3", 90, remission="doris", remission_drug_free=True)
    in_follow_up.record("remission-month-12", 365, remission="active", disease_activity="12")
    in_follow_up.record("visit-month-12", 365, igg="7.0", igg_replacement=True)
    in_follow_up.record("ltfu-year-2", 730, new_malignancy=True, malignancy_type="T-cell lymphoma")
    in_follow_up.record("ltfu-year-3", 1095, new_malignancy="none")
    status = selectors.followup_status(journey=in_follow_up)
    assert status.remission.state == "active"
    assert status.remission.relapsed_on == in_follow_up.day0 + timedelta(days=365)
    assert status.igg.hypogammaglobulinaemia is True and status.igg.on_replacement
    assert [visit.record["malignancy_type"] for visit in status.malignancies] == ["T-cell lymphoma"]


@pytest.mark.django_db
def test_status_costs_one_query_at_any_length(in_follow_up, django_assert_num_queries):
    in_follow_up.record("visit-day-14", 14, cd19_b_cells="0")
    with django_assert_num_queries(1):
        selectors.followup_status(journey=in_follow_up)
    for code, day in (("visit-day-28", 28), ("visit-month-2", 60), ("visit-month-3", 90), ("visit-month-6", 182)):
        in_follow_up.record(code, day, cd19_b_cells="3", igg="5")
    with django_assert_num_queries(1):
        assert len(selectors.followup_status(journey=in_follow_up).visits) == 5


@pytest.mark.django_db
def test_malignancy_list_is_one_query_for_any_number(coordinator, protocol, django_assert_num_queries):
    from journeys.services import journey_start

    def malignant_journey(value):
        journey = journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=in_days(0)
        )
        Step.objects.filter(journey=journey, template__code="ltfu-year-2").update(
            status="done", completed_at=journey.started_at, record={"new_malignancy": value}
        )
        return journey

    from django.utils import timezone

    def in_days(n):
        return timezone.localdate() + timedelta(days=n)

    first = malignant_journey(True)
    malignant_journey("none")
    with django_assert_num_queries(1):
        rows = list(selectors.malignancy_steps())
    assert [step.journey_id for step in rows] == [first.id]
    for value in (True, "confirmed", "suspected", False):
        malignant_journey(value)
    with django_assert_num_queries(1):
        rows = [step.journey.patient.mrn for step in selectors.malignancy_steps()]
    assert len(rows) == 4
