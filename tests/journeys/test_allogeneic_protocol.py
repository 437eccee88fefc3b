"""The off-the-shelf protocol: no collection, every step on Day 0, vein-to-vein in days; the autologous
protocol behaves as before (its hash, its leukapheresis date, its infusion guard)."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from carclinic.errors import InvalidInput
from journeys import protocol_files
from journeys.models import Anchor, Milestone, ProtocolTemplate
from journeys.protocol_files import InvalidProtocolFile, content_hash, parse
from journeys.services import journey_start
from journeys.transitions import guard_infusion
from tests.factories import PatientFactory

ALLOGENEIC_FILE = protocol_files.SHIPPED_DIR / "cd19-car-t-allogeneic.toml"
AUTOLOGOUS_FILE = protocol_files.SHIPPED_DIR / "cd19-car-t-autoimmune.toml"


@pytest.fixture
def allogeneic(db):
    return ProtocolTemplate.objects.get(collection=False, version=1)


def test_migrate_loads_the_off_the_shelf_protocol_beside_the_autologous_one(allogeneic, protocol):
    assert allogeneic.is_active and not allogeneic.collection and protocol.collection
    templates = list(allogeneic.step_templates.all())
    assert {t.anchor for t in templates} == {Anchor.DAY0}
    assert not [t for t in templates if t.milestone == Milestone.COLLECTION]
    stage_1_2 = [(t.stage, t.code) for t in templates if t.stage <= 2]
    assert stage_1_2 == [(1, "eligibility-labs"), (1, "eligibility-signoff"), (2, "unit-reserved"), (2, "unit-released")]
    released = [t.code for t in templates if t.milestone == Milestone.PRODUCT_RELEASED]
    assert released == ["unit-released"]
    # Stages 3 to 5 are the autologous protocol's, step for step.
    later = [(t.stage, t.code, t.offset_days) for t in templates if t.stage >= 3]
    assert later == [(t.stage, t.code, t.offset_days) for t in protocol.step_templates.all() if t.stage >= 3]


def test_the_autologous_protocol_hashes_as_before_the_collection_flag(protocol):
    document = parse(AUTOLOGOUS_FILE.read_bytes()).model_dump(mode="json")
    assert document["collection"] is True
    without_flag = {key: value for key, value in document.items() if key != "collection"}
    # The hash an existing database holds for version 1: no new version appears on the next migrate.
    assert content_hash(document) == content_hash(without_flag) == protocol.content_hash
    assert "\ncollection =" not in protocol_files.to_toml(document)


def test_the_off_the_shelf_file_dumps_with_its_flag_and_reads_back():
    document = parse(ALLOGENEIC_FILE.read_bytes()).model_dump(mode="json")
    text = protocol_files.to_toml(document)
    assert "collection = false" in text
    assert parse(text).model_dump(mode="json") == document


def test_a_protocol_without_collection_refuses_a_step_on_the_leukapheresis_date():
    text = (
        'name = "x"\nplanned_vein_to_vein_days = 5\ncollection = false\n\n[[steps]]\nstage = 1\ncode = "a"\nname = "A"\n'
        'anchor = "leukapheresis"\noffset_days = 0\nresponsible_role = "nurse"\nmilestone = "collection"\n'
    )
    with pytest.raises(InvalidProtocolFile) as caught:
        parse(text)
    where = {problem.where for problem in caught.value.problems}
    assert where == {"steps[0].anchor", "steps[0].milestone"}


def test_an_off_the_shelf_journey_starts_without_leukapheresis_and_reaches_day0_in_days(coordinator, patient, allogeneic):
    journey = journey_start(actor=coordinator, patient_id=patient.id, protocol_id=allogeneic.id)
    today = timezone.localdate()
    assert journey.leukapheresis_date == today  # the journey's start: the work-up's reference
    assert journey.day0_planned == today + timedelta(days=12)
    steps = {step.template.code: step for step in journey.steps.select_related("template")}
    assert steps["eligibility-labs"].due_on == journey.day0_planned - timedelta(days=12) == today
    assert steps["unit-reserved"].due_on == journey.day0_planned - timedelta(days=8)
    assert steps["infusion"].due_on == journey.day0_planned
    event = journey.events.get(kind="journey_started")
    assert event.detail["leukapheresis_date"] is None


def test_an_off_the_shelf_journey_takes_a_planned_day0(coordinator, patient, allogeneic):
    day0 = timezone.localdate() + timedelta(days=20)
    journey = journey_start(actor=coordinator, patient_id=patient.id, protocol_id=allogeneic.id, day0_planned=day0)
    assert journey.day0_planned == day0


def test_a_leukapheresis_date_is_refused_off_the_shelf_and_required_otherwise(coordinator, patient, allogeneic, protocol):
    with pytest.raises(InvalidInput) as caught:
        journey_start(actor=coordinator, patient_id=patient.id, protocol_id=allogeneic.id, leukapheresis_date=date.today())
    assert "leukapheresis_date" in caught.value.field_errors
    with pytest.raises(InvalidInput) as caught:
        journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id)
    assert "leukapheresis_date" in caught.value.field_errors


def _done(step, on: date):
    step.performed_at = timezone.make_aware(timezone.datetime.combine(on, timezone.datetime.min.time()).replace(hour=10))
    return step


def test_the_infusion_asks_for_a_collection_only_where_the_protocol_has_one(coordinator, patient, allogeneic, journey):
    # Autologous (the `journey` fixture): released but no collection recorded → refused, as before.
    steps = {s.template.code: s for s in journey.steps.select_related("template", "stage")}
    with pytest.raises(InvalidInput) as caught:
        guard_infusion(journey, steps["infusion"], journey.day0_planned, [_done(steps["qc-release"], journey.day0_planned)])
    assert any("collection" in problem for problem in caught.value.field_errors["performed_at"])

    off_the_shelf = journey_start(actor=coordinator, patient_id=PatientFactory().id, protocol_id=allogeneic.id)
    steps = {s.template.code: s for s in off_the_shelf.steps.select_related("template", "stage")}
    day0 = off_the_shelf.day0_planned
    guard_infusion(off_the_shelf, steps["infusion"], day0, [_done(steps["unit-released"], day0 - timedelta(days=7))])
    with pytest.raises(InvalidInput) as caught:
        guard_infusion(off_the_shelf, steps["infusion"], day0, [])
    assert caught.value.field_errors["performed_at"] == ["The product's QC release is not recorded yet: no infusion before it."]


def test_the_start_page_starts_an_off_the_shelf_journey_with_no_leukapheresis_date(client, coordinator, patient, allogeneic):
    from django.urls import reverse

    client.force_login(coordinator)
    url = reverse("journey_start", args=[patient.public_id])
    # The form's suggested leukapheresis date left in: refused on its field, in words.
    response = client.post(url, {"protocol": allogeneic.pk, "leukapheresis_date": date.today().isoformat()})
    assert response.status_code == 400 and "no cells are collected; leave it empty" in response.content.decode()
    response = client.post(url, {"protocol": allogeneic.pk, "leukapheresis_date": ""})
    assert response.status_code == 302
    body = client.get(reverse("patient_detail", args=[patient.public_id])).content.decode()
    assert "off the shelf: no collection" in body and "Reserve a unit" in body


def test_from_lymphodepletion_on_the_off_the_shelf_protocol_is_the_autologous_one():
    # Stages 3–5 are shared care (chemotherapy, infusion, monitoring, follow-up): a change to the autologous file
    # (the eligibility, discharge and two-week monitoring of issue 13, the follow-up scores of issue 11) must be
    # made to the off-the-shelf file too, or this fails.
    def later_stages(path):
        return [step for step in parse(path.read_bytes()).model_dump(mode="json")["steps"] if step["stage"] >= 3]

    assert later_stages(ALLOGENEIC_FILE) == later_stages(AUTOLOGOUS_FILE)
