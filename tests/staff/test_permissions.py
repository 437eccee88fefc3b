"""The permission matrix, action by action and role by role, through the real services that enforce it."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from alerts.models import AlertKind
from alerts.services import alert_acknowledge, alert_raise
from carclinic.errors import NotPermitted
from journeys.models import Step, StepStatus
from journeys.services import (
    day0_reschedule,
    journey_hold,
    journey_resume,
    journey_start,
    journey_withdraw,
    protocol_new_version,
    step_complete,
    step_record_correct,
    step_skip,
)
from notifications.models import Channel, Reminder, ReminderKind
from notifications.services import reminder_cancel, reminder_snooze
from patients.models import Indication, Sex
from patients.services import consent_record, measurement_record, patient_enrol, patient_update
from planning.services import export_record
from registry.services import export_record as registry_export_record
from staff.roles import PERMISSIONS, Action, Role, authorize, can
from tests.factories import PatientFactory, lymphodepletion_earlier, make_protocol, minimal_record, second_signer

WHO = ["coordinator", "nurse", "physician", "viewer", "admin_group", "superuser", "no_role", "inactive", "anonymous"]


@pytest.fixture
def person(request, make_user):
    """Build the user a parameter names; return it with the roles the matrix should grant it."""

    def build(who: str):
        if who in ("coordinator", "nurse", "physician", "viewer"):
            return make_user(who), {who}
        if who == "admin_group":
            return make_user("admin"), {Role.ADMIN}
        if who == "superuser":
            return make_user(is_superuser=True, is_staff=True), {Role.ADMIN}
        if who == "no_role":
            return make_user(), set()
        if who == "inactive":
            return make_user("coordinator", "physician", is_active=False), set()
        return AnonymousUser(), set()

    return build


@pytest.fixture
def open_journey(make_user, protocol):
    journey = journey_start(
        actor=make_user("coordinator"),
        patient_id=PatientFactory().id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate(),
    )
    return journey


def call_service(action: str, actor, journey, protocol):
    """The real service behind each action; for reads, the shared check that pages and the API call."""
    patient = journey.patient
    step = Step.objects.get(journey=journey, template__code="eligibility-labs")  # a nurse's step
    if action in (Action.VIEW_CLINICAL, Action.PRINT_DISCHARGE_SHEET):
        authorize(actor, action)  # reads are checked by pages and the API, which share this function
    elif action == Action.ENROL_PATIENT:
        patient_enrol(
            actor=actor,
            mrn="MRN-MATRIX",
            given_name="A",
            family_name="B",
            date_of_birth=date(1980, 1, 1),
            sex=Sex.FEMALE,
            indication=Indication.SLE,
        )
    elif action == Action.EDIT_PATIENT:
        patient_update(actor=actor, patient_id=patient.id, expected_version=patient.version, phone="+49 9131 0")
        measurement_record(
            actor=actor,
            patient_id=patient.id,
            measured_on=timezone.localdate(),
            height_cm=Decimal("170.0"),
            weight_kg=Decimal("70.0"),
        )
        consent_record(actor=actor, patient_id=patient.id, signed_on=timezone.localdate(), document_version="v3")
    elif action == Action.START_JOURNEY:
        journey_start(
            actor=actor, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
        )
    elif action == Action.COMPLETE_STEP:
        step_complete(actor=actor, step_id=step.id)
    elif action == Action.CORRECT_STEP:
        # Someone allowed to correct records the step first (a nurse corrects her own records only).
        recorder = actor if can(actor, Action.COMPLETE_STEP) else journey.started_by
        step_complete(
            actor=recorder, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
        step_record_correct(
            actor=actor, step_id=step.id, record=minimal_record(step), notes="Haemolysed sample", reason="Note added later"
        )
    elif action == Action.CORRECT_OTHERS_RECORD:
        # A record the coordinator who started the journey signed, corrected by someone else.
        recorder = journey.started_by
        assert recorder != actor
        step_complete(
            actor=recorder, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
        step_record_correct(
            actor=actor, step_id=step.id, record=minimal_record(step), notes="Haemolysed sample", reason="Note added later"
        )
    elif action == Action.SKIP_STEP:
        step_skip(actor=actor, step_id=step.id, reason="Labs from the referring hospital")
    elif action == Action.RESCHEDULE_DAY0:
        day0_reschedule(
            actor=actor,
            journey_id=journey.id,
            new_day0=journey.day0_planned + timedelta(days=7),
            reason="Manufacturing slot moved",
        )
    elif action == Action.HOLD_JOURNEY:
        journey_hold(actor=actor, journey_id=journey.id, reason="Infection")
        journey_resume(actor=actor, journey_id=journey.id, reason="Cleared")
    elif action == Action.EXPORT_DATA:
        export_record(actor=actor, kind="overdue", filters={"stage": 2}, row_count=0)
    elif action == Action.SEND_QUESTIONNAIRE:
        from followup.services import questionnaire_link_send
        from patients.models import ConsentKind

        patient.email = "patient@example.test"
        patient.save(update_fields=["email"])
        consent_record(
            actor=journey.started_by,
            patient_id=patient.id,
            signed_on=timezone.localdate(),
            document_version="LTFU v1",
            kind=ConsentKind.LTFU_CONTACT,
        )
        questionnaire_link_send(actor=actor, step_id=Step.objects.get(journey=journey, template__code="ltfu-year-6").id)
    elif action == Action.REPORT_SAFETY:
        authorize(actor, action)  # a read: the malignancy card checks it (tests/followup/test_pages.py)
    elif action == Action.VIEW_METRICS:
        registry_export_record(actor=actor, kind="on_time", channel="page", filters={}, row_count=5)
    elif action == Action.EXPORT_REGISTRY:
        registry_export_record(actor=actor, kind="registry", channel="api", fmt="ndjson", filters={}, row_count=0)
    elif action == Action.WITHDRAW_JOURNEY:
        journey_withdraw(actor=actor, journey_id=journey.id, reason="Patient's wish")
    elif action == Action.MANAGE_PROTOCOLS:
        protocol_new_version(actor=actor, protocol_id=protocol.id)
    elif action == Action.ACKNOWLEDGE_ALERT:
        # A custody excursion: the kind a coordinator may acknowledge too (a CRS grade needs a physician).
        alert, _ = alert_raise(
            patient_id=patient.id,
            kind=AlertKind.CUSTODY_EXCURSION,
            key=f"matrix:{patient.id}",
            summary="Temperature excursion",
            escalate_after_minutes=30,
        )
        alert_acknowledge(actor=actor, alert_id=alert.id, password="correct-horse-battery")
    elif action == Action.OVERRIDE_COMPUTED:
        if not can(actor, Action.COMPLETE_STEP):
            authorize(actor, action)  # who cannot record a step at all cannot overrule what it computes either
        graded = make_protocol(
            name=f"Override {uuid.uuid4()}",
            steps=[
                dict(
                    stage=1,
                    code="graded",
                    anchor="leukapheresis",
                    offset_days=0,
                    responsible_role="nurse",
                    record_fields=[
                        {
                            "name": "ice",
                            "label": "ICE",
                            "type": "integer",
                            "computed": {
                                "by": "ice_score",
                                "from": {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
                            },
                        },
                        {
                            "name": "ice_physician",
                            "label": "ICE by the physician",
                            "type": "integer",
                            "override": {"of": "ice", "reason": "why"},
                        },
                        {"name": "why", "label": "Why", "type": "text"},
                    ],
                )
            ],
        )
        other = journey_start(
            actor=journey.started_by,
            patient_id=PatientFactory().id,
            protocol_id=graded.id,
            leukapheresis_date=timezone.localdate(),
        )
        step_complete(
            actor=actor,
            step_id=other.steps.get(template__code="graded").id,
            record={"ice_physician": 9, "why": "Aphasic from a known stroke, not ICANS"},
        )
    elif action == Action.MANAGE_REMINDERS:
        now = timezone.now()
        reminder = Reminder.objects.create(
            kind=ReminderKind.DUE_TODAY,
            step=step,
            for_day=step.due_on,
            recipient=journey.started_by,
            channel=Channel.IN_APP,
            due_at=now + timedelta(hours=1),
            send_after=now + timedelta(hours=1),
            created_at=now,
        )
        reminder_snooze(actor=actor, reminder_id=reminder.id, until=now + timedelta(hours=2), reason="Ward round first")
        reminder_cancel(actor=actor, reminder_id=reminder.id, reason="Done by phone")
    elif action == Action.VIEW_CONTRACTS:
        from contracts import services as contract_services

        if not can(actor, Action.EXPORT_DATA):
            authorize(actor, action)  # the finance export asks for contracts first; a role without export stops there
        contract_services.export_record(actor=actor, filters={}, row_count=0)
    elif action == Action.MANAGE_CONTRACTS:
        from contracts import services as contract_services

        contract_services.payer_create(actor=actor, name=f"Payer {uuid.uuid4()}")
    elif action == Action.MANAGE_STOCK:
        from manufacturing import services as mfg
        from manufacturing.models import ProductKind
        from tests.manufacturing.builders import make_product

        mfg.stock_unit_receive(
            actor=actor,
            product_id=make_product(name="Offcel", kind=ProductKind.ALLOGENEIC).id,
            lot_number="LOT-1",
            bag_code=f"BAG-{uuid.uuid4()}",
            expires_on=timezone.localdate() + timedelta(days=90),
            location="Freezer 2",
        )
    elif action in _PRODUCT_ROAD_ACTIONS:
        _call_product_road_service(action, actor, journey)
    else:  # a new action without a case here must not pass unnoticed
        raise AssertionError(f"No service mapped for {action}")


_PRODUCT_ROAD_ACTIONS = {
    Action.MANAGE_ORDERS,
    Action.RECORD_QC,
    Action.EXCEPTIONAL_RELEASE,
    Action.RECORD_CUSTODY,
    Action.DECIDE_EXCURSION,
    Action.BEDSIDE_CHECK,
}


def _call_product_road_service(action: str, actor, journey):
    """The manufacturing services behind the product-road actions. The order is requested by the journey's own
    coordinator; its state is set directly where reaching it through the plant's work is not what is tested."""
    from manufacturing import services as mfg
    from manufacturing.models import BagKind, ManufacturingOrder
    from tests.manufacturing.builders import PASSING, make_plant, make_product

    product = make_product()
    plant = make_plant(product)
    if action == Action.MANAGE_ORDERS:
        mfg.order_request(actor=actor, journey_id=journey.id, product_id=product.id, plant_id=plant.id)
        return
    order = mfg.order_request(actor=journey.started_by, journey_id=journey.id, product_id=product.id, plant_id=plant.id)
    if action == Action.RECORD_QC:
        ManufacturingOrder.objects.filter(pk=order.pk).update(status="qc_testing", lot_number="LOT-1")
        mfg.order_qc_record(actor=actor, order_id=order.id, results={**PASSING, "viability": "12"})
    elif action == Action.EXCEPTIONAL_RELEASE:
        ManufacturingOrder.objects.filter(pk=order.pk).update(status="out_of_specification", lot_number="LOT-1")
        journey.stages.filter(number=1).update(status="completed")
        journey.stages.filter(number=2).update(status="in_progress")
        from django.contrib.auth.models import Group

        from tests.factories import UserFactory

        countersigner = UserFactory()
        countersigner.groups.add(Group.objects.get(name="coordinator"))
        mfg.order_exceptional_release(actor=actor, order_id=order.id, reason="No alternative", countersigned_by=countersigner)
    elif action == Action.RECORD_CUSTODY:
        mfg.bag_register(actor=actor, order_id=order.id, kind=BagKind.COLLECTION)
    elif action == Action.DECIDE_EXCURSION:
        bag = mfg.bag_register(actor=journey.started_by, order_id=order.id, kind=BagKind.COLLECTION)
        event = mfg.custody_record(
            actor=journey.started_by,
            bag_id=bag.id,
            kind="collected",
            at=timezone.now(),
            handled_by="Nina",
            location="Ward",
            temperature_celsius=Decimal("30"),
        )
        mfg.excursion_decide(actor=actor, excursion_id=event.excursions.get().id, decision="discard", reason="Too warm")
    elif action == Action.BEDSIDE_CHECK:
        chain = mfg.chain_of_identity_assign(actor=journey.started_by, journey_id=journey.id)
        mfg.bedside_check(actor=actor, journey_id=journey.id, scanned_bag=chain.identifier)


def test_every_action_is_in_the_matrix():
    assert set(PERMISSIONS) == set(Action.values)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("action", Action.values)
def test_the_matrix_is_enforced(action, who, person, open_journey, protocol):
    actor, roles = person(who)
    allowed = bool(roles & PERMISSIONS[action])
    if allowed:
        call_service(action, actor, open_journey, protocol)
    else:
        with pytest.raises(NotPermitted) as refused:
            call_service(action, actor, open_journey, protocol)
        assert refused.value.http_status == 403
        # Correcting someone else's record is correcting first: a role without that is refused it.
        assert refused.value.action in ({action, Action.CORRECT_STEP} if action == Action.CORRECT_OTHERS_RECORD else {action})


def test_refused_actions_write_nothing(make_user, open_journey):
    viewer = make_user("viewer")
    step = Step.objects.get(journey=open_journey, template__code="eligibility-labs")
    history_before = Step.history.count()
    with pytest.raises(NotPermitted):
        step_complete(actor=viewer, step_id=step.id)
    step.refresh_from_db()
    assert step.status == StepStatus.PENDING and Step.history.count() == history_before


@pytest.mark.parametrize("who", ["nurse", "coordinator"])
def test_a_physicians_step_is_refused_to_other_roles(who, make_user, open_journey):
    step = Step.objects.get(journey=open_journey, template__code="eligibility-signoff")
    assert step.template.responsible_role == Role.PHYSICIAN
    with pytest.raises(NotPermitted, match="Only a physician"):
        step_complete(actor=make_user(who), step_id=step.id)
    step.refresh_from_db()
    assert step.status == StepStatus.PENDING


def test_a_physicians_step_cannot_be_skipped_by_a_coordinator(make_user, open_journey):
    step = Step.objects.get(journey=open_journey, template__code="eligibility-signoff")
    with pytest.raises(NotPermitted, match="Only a physician may skip"):
        step_skip(actor=make_user("coordinator"), step_id=step.id, reason="patient declined")
    step.refresh_from_db()
    assert step.status == StepStatus.PENDING
    assert step_skip(actor=make_user("physician"), step_id=step.id, reason="signed on paper").status == StepStatus.SKIPPED


@pytest.mark.parametrize("who", ["physician", "superuser", "admin_group"])
def test_a_physicians_step_is_recorded_by_a_physician_or_admin(who, person, open_journey):
    actor, _ = person(who)
    step = Step.objects.get(journey=open_journey, template__code="eligibility-signoff")
    assert step_complete(actor=actor, step_id=step.id).completed_by == actor


def test_nurse_and_coordinator_cover_each_others_steps(make_user, open_journey):
    nurse_step = Step.objects.get(journey=open_journey, template__code="eligibility-labs")
    coordinator_step = Step.objects.get(journey=open_journey, template__code="shipment")
    assert step_complete(actor=make_user("coordinator"), step_id=nurse_step.id).status == StepStatus.DONE
    assert coordinator_step.template.responsible_role == Role.COORDINATOR
    with pytest.raises(NotPermitted):
        step_complete(actor=make_user("viewer"), step_id=coordinator_step.id)


def test_only_a_registry_client_may_pull_the_registry_export(make_user):
    from registry.models import RegistryExport

    registry_client = make_user("registry")
    registry_export_record(actor=registry_client, kind="registry", channel="api", fmt="csv", filters={}, row_count=3)
    for role in ("viewer", "integration", "manufacturer", "coordinator"):
        with pytest.raises(NotPermitted):
            registry_export_record(actor=make_user(role), kind="registry", channel="api", filters={}, row_count=3)
    # And the registry client may not see the metrics page's tables, nor anything clinical.
    assert not can(registry_client, Action.VIEW_METRICS) and not can(registry_client, Action.VIEW_CLINICAL)
    assert RegistryExport.objects.count() == 1
