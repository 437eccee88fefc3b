"""The decisions that had only a service: exceptional release (signed twice), a physician's decision on
quarantined material, resolving a bedside mismatch, and registering a bag against the chain of identity.
Services first, then the pages per role, with field errors and 409 on a concurrent edit; and the clinical
alerts that excursions and mismatches raise, once per finding."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertKind, ClinicalAlert
from carclinic.errors import InvalidInput, StaleVersion
from journeys.models import ProtocolTemplate
from journeys.services import journey_start
from manufacturing import services
from manufacturing.errors import ChainOfIdentityInvalid, MismatchAlreadyResolved, OrderTransitionNotAllowed
from manufacturing.models import Bag, BagKind, BagStatus, BedsideCheck, ChainOfIdentity, Excursion, OrderStatus
from tests.factories import PatientFactory
from tests.manufacturing.builders import PASSING, walk_to_qc

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
ROLES = ["coordinator", "nurse", "physician", "viewer", "admin", "manufacturer"]


@pytest.fixture(autouse=True)
def _plain_static(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def users(coordinator, nurse, physician, viewer, make_user):
    return {
        "coordinator": coordinator,
        "nurse": nurse,
        "physician": physician,
        "viewer": viewer,
        "admin": make_user("admin"),
        "manufacturer": make_user("manufacturer"),
    }


@pytest.fixture
def oos_order(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results={**PASSING, "viability": "12"})
    order.refresh_from_db()
    assert order.status == OrderStatus.OUT_OF_SPECIFICATION
    return order


@pytest.fixture
def quarantined_bag(order, nurse):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    services.custody_record(
        actor=nurse,
        bag_id=bag.id,
        kind="collected",
        at=timezone.now() - timedelta(hours=1),
        handled_by="Nina",
        location="Apheresis unit",
        temperature_celsius=Decimal("35"),
    )
    bag.refresh_from_db()
    assert bag.status == BagStatus.QUARANTINED
    return bag


@pytest.fixture
def other_chain(coordinator):
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory().id,
        protocol_id=ProtocolTemplate.objects.get(version=1).id,
        leukapheresis_date=timezone.localdate(),
    )
    return services.chain_of_identity_assign(actor=coordinator, journey_id=journey.id)


@pytest.fixture
def mismatch(order, nurse, other_chain):
    check = services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=f"{other_chain.identifier}-P1")
    assert check.outcome == "mismatch"
    return check


# --- services -------------------------------------------------------------------------------------


def test_an_exceptional_release_is_signed_by_a_second_persons_name_and_password(oos_order, physician, coordinator, nurse):
    def release(**kwargs):
        return services.order_exceptional_release(
            actor=physician, order_id=oos_order.id, reason="No other option: viability low, patient progressing", **kwargs
        )

    with pytest.raises(InvalidInput) as wrong:
        release(countersigner_username=coordinator.username, countersigner_password="not-it")
    assert "countersigner_password" in wrong.value.field_errors
    with pytest.raises(InvalidInput) as unknown:
        release(countersigner_username="nobody-here", countersigner_password=PASSWORD)
    # One message for a wrong name and a wrong password: it tells no one which names exist.
    assert unknown.value.field_errors == wrong.value.field_errors
    with pytest.raises(InvalidInput) as self_signed:
        release(countersigner_username=physician.username, countersigner_password=PASSWORD)
    assert "countersigner_username" in self_signed.value.field_errors
    with pytest.raises(InvalidInput) as by_a_nurse:
        release(countersigner_username=nurse.username, countersigner_password=PASSWORD)
    assert "physician or a coordinator" in by_a_nurse.value.field_errors["countersigner_username"][0]
    with pytest.raises(StaleVersion):
        release(
            countersigner_username=coordinator.username, countersigner_password=PASSWORD, expected_version=oos_order.version - 1
        )
    release(countersigner_username=coordinator.username, countersigner_password=PASSWORD, expected_version=oos_order.version)
    oos_order.refresh_from_db()
    assert oos_order.status == OrderStatus.RELEASED and oos_order.exceptional_release
    assert oos_order.exceptional_release_countersigned_by == coordinator


def test_kept_in_quarantine_the_bag_waits_for_a_final_decision(quarantined_bag, physician):
    excursion = Excursion.objects.get(bag=quarantined_bag)
    services.excursion_decide(
        actor=physician,
        excursion_id=excursion.id,
        decision="quarantine",
        reason="Ask the maker for stability data",
        expected_version=quarantined_bag.version,
    )
    quarantined_bag.refresh_from_db()
    assert quarantined_bag.status == BagStatus.QUARANTINED
    services.excursion_decide(actor=physician, excursion_id=excursion.id, decision="use", reason="Maker: stable for 2 h at 35 °C")
    quarantined_bag.refresh_from_db()
    assert quarantined_bag.status == BagStatus.IN_CUSTODY
    with pytest.raises(OrderTransitionNotAllowed):
        services.excursion_decide(actor=physician, excursion_id=excursion.id, decision="discard", reason="Changed my mind")
    assert [h.decision for h in excursion.history.order_by("history_date")][-2:] == ["quarantine", "use"]


def test_a_decision_on_a_bag_someone_changed_meanwhile_is_refused(quarantined_bag, physician, make_user):
    excursion = Excursion.objects.get(bag=quarantined_bag)
    seen = quarantined_bag.version
    services.excursion_decide(
        actor=make_user("physician"), excursion_id=excursion.id, decision="discard", reason="Too warm", expected_version=seen
    )
    with pytest.raises(StaleVersion):
        services.excursion_decide(
            actor=physician, excursion_id=excursion.id, decision="use", reason="Fine", expected_version=seen
        )
    quarantined_bag.refresh_from_db()
    assert quarantined_bag.status == BagStatus.DISCARDED


def test_the_second_physician_to_resolve_a_mismatch_is_told(mismatch, physician, make_user):
    services.bedside_mismatch_resolve(actor=make_user("physician"), check_id=mismatch.id, resolution="Wrong bag returned")
    with pytest.raises(MismatchAlreadyResolved) as late:
        services.bedside_mismatch_resolve(actor=physician, check_id=mismatch.id, resolution="Wrong bag")
    assert late.value.http_status == 409


def test_a_bag_is_registered_only_under_its_own_chain_of_identity(order, nurse, other_chain):
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    mistyped = chain.identifier[:-2] + ("A" if chain.identifier[-2] != "A" else "B") + chain.identifier[-1]
    with pytest.raises(ChainOfIdentityInvalid) as bad_check:
        services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION, chain_on_label=mistyped)
    assert "chain_on_label" in bad_check.value.field_errors
    with pytest.raises(InvalidInput) as another:
        services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION, chain_on_label=other_chain.identifier)
    assert chain.display in another.value.field_errors["chain_on_label"][0]
    assert not Bag.objects.filter(order=order).exists()
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION, chain_on_label=chain.display.lower())
    assert bag.code == f"{chain.identifier}-C1"


# --- alerts ---------------------------------------------------------------------------------------


def test_an_excursion_raises_one_clinical_alert_per_excursion(order, nurse, physician, coordinator):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    start = timezone.now() - timedelta(hours=80)
    services.custody_record(
        actor=nurse, bag_id=bag.id, kind="collected", at=start, handled_by="N", location="A", temperature_celsius=Decimal("4")
    )
    services.custody_record(
        actor=nurse, bag_id=bag.id, kind="packed", at=start + timedelta(hours=1), handled_by="N", location="A"
    )
    services.custody_record(
        actor=nurse, bag_id=bag.id, kind="picked_up", at=start + timedelta(hours=2), handled_by="C", location="A"
    )
    assert not ClinicalAlert.objects.exists()
    # 78 h in transit (maximum 72) and 12 °C (range 2–8): two excursions, two alerts.
    services.custody_record(
        actor=nurse,
        bag_id=bag.id,
        kind="received_at_plant",
        at=start + timedelta(hours=78),
        handled_by="Plant",
        location="Leiden",
        temperature_celsius=Decimal("12"),
    )
    excursions = list(Excursion.objects.filter(bag=bag).order_by("id"))
    assert len(excursions) == 2
    alerts = ClinicalAlert.objects.filter(kind=AlertKind.CUSTODY_EXCURSION).order_by("id")
    assert [a.key for a in alerts] == [f"custody-excursion:{x.pk}" for x in excursions]
    assert all(a.journey_id == order.journey_id and a.acknowledged_at is None for a in alerts)
    # Raised again with the same key (a retried request): nothing new.
    from alerts.services import alert_raise

    again, raised_now = alert_raise(
        patient_id=order.journey.patient_id,
        kind=AlertKind.CUSTODY_EXCURSION,
        key=f"custody-excursion:{excursions[0].pk}",
        summary="again",
        escalate_after_minutes=30,
    )
    assert not raised_now and again == alerts[0] and ClinicalAlert.objects.count() == 2


def test_a_repeated_mismatch_raises_once_until_resolved_and_then_again(order, nurse, physician, other_chain):
    def scan():
        return services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=f"{other_chain.identifier}-P1")

    first = scan()
    scan()
    assert BedsideCheck.objects.filter(outcome="mismatch").count() == 2
    assert ClinicalAlert.objects.filter(kind=AlertKind.COI_MISMATCH).count() == 1
    services.bedside_mismatch_resolve(actor=physician, check_id=first.id, resolution="Wrong bag returned")
    # The second scan's row is still unresolved: the infusion stays blocked, and it belongs to the first alert.
    assert ClinicalAlert.objects.filter(kind=AlertKind.COI_MISMATCH).count() == 1
    for check in BedsideCheck.objects.filter(resolved_at__isnull=True, outcome="mismatch"):
        services.bedside_mismatch_resolve(actor=physician, check_id=check.id, resolution="Same wrong bag")
    scan()
    assert ClinicalAlert.objects.filter(kind=AlertKind.COI_MISMATCH).count() == 2


# --- pages ----------------------------------------------------------------------------------------

ALLOWED = {
    "exceptional_release": {"physician"},
    "excursion_decision": {"physician"},
    "mismatch_resolve": {"physician"},
    "bag_register": {"coordinator", "nurse", "physician", "admin"},
}


@pytest.mark.parametrize("role", ROLES)
def test_who_may_open_which_decision_page(client, users, oos_order, quarantined_bag, mismatch, role):
    urls = {
        "exceptional_release": reverse("manufacturing:exceptional_release", args=[oos_order.public_id]),
        "excursion_decision": reverse("manufacturing:excursion_decision", args=[quarantined_bag.public_id]),
        "mismatch_resolve": reverse("manufacturing:mismatch_resolve", args=[oos_order.journey.public_id]),
        "bag_register": reverse("manufacturing:bag_register", args=[oos_order.public_id]),
    }
    client.force_login(users[role])
    for page, url in urls.items():
        expected = 200 if role in ALLOWED[page] else 403
        assert client.get(url).status_code == expected, (page, role)


def test_the_order_page_links_to_each_decision(client, physician, oos_order, quarantined_bag):
    client.force_login(physician)
    body = client.get(reverse("manufacturing:order", args=[oos_order.public_id])).content.decode()
    assert reverse("manufacturing:exceptional_release", args=[oos_order.public_id]) in body
    assert reverse("manufacturing:excursion_decision", args=[quarantined_bag.public_id]) in body
    assert reverse("manufacturing:bag_register", args=[oos_order.public_id]) in body


def test_the_exceptional_release_page_shows_the_failures_and_field_errors_and_releases(client, physician, coordinator, oos_order):
    client.force_login(physician)
    url = reverse("manufacturing:exceptional_release", args=[oos_order.public_id])
    page = client.get(url).content.decode()
    assert "Viability" in page and "12" in page
    data = {
        "reason": "",
        "countersigner_username": coordinator.username,
        "countersigner_password": "wrong",
        "version": oos_order.version,
    }
    response = client.post(url, data)
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = client.post(url, {**data, "reason": "Progressing disease, no alternative"})
    assert response.status_code == 400
    assert "That user name and password do not match" in response.content.decode()
    response = client.post(url, {**data, "reason": "Progressing disease", "countersigner_password": PASSWORD})
    assert response.status_code == 302
    oos_order.refresh_from_db()
    assert oos_order.exceptional_release and oos_order.status == OrderStatus.RELEASED
    flagged = client.get(reverse("manufacturing:order", args=[oos_order.public_id])).content.decode()
    assert "EXCEPTIONAL RELEASE" in flagged


def test_an_exceptional_release_on_a_changed_order_answers_409(client, physician, coordinator, oos_order):
    client.force_login(physician)
    response = client.post(
        reverse("manufacturing:exceptional_release", args=[oos_order.public_id]),
        {
            "reason": "Progressing disease",
            "countersigner_username": coordinator.username,
            "countersigner_password": PASSWORD,
            "version": oos_order.version - 1,
        },
    )
    assert response.status_code == 409 and "changed by someone else" in response.content.decode()
    oos_order.refresh_from_db()
    assert not oos_order.exceptional_release


def test_the_excursion_page_decides_and_answers_409_to_the_slower_physician(client, physician, quarantined_bag):
    client.force_login(physician)
    url = reverse("manufacturing:excursion_decision", args=[quarantined_bag.public_id])
    excursion = Excursion.objects.get(bag=quarantined_bag)
    assert "35" in client.get(url).content.decode()
    data = {"excursion": excursion.pk, "decision": "discard", "reason": "", "version": quarantined_bag.version}
    response = client.post(url, data)
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert client.post(url, {**data, "reason": "35 °C for an hour"}).status_code == 302
    quarantined_bag.refresh_from_db()
    assert quarantined_bag.status == BagStatus.DISCARDED
    late = client.post(url, {**data, "decision": "use", "reason": "Looks fine"})
    assert late.status_code in (400, 409)  # the excursion left the form's list, or the bag's version moved on


def test_a_stale_excursion_decision_answers_409(client, physician, quarantined_bag):
    client.force_login(physician)
    excursion = Excursion.objects.get(bag=quarantined_bag)
    response = client.post(
        reverse("manufacturing:excursion_decision", args=[quarantined_bag.public_id]),
        {"excursion": excursion.pk, "decision": "use", "reason": "Fine", "version": quarantined_bag.version - 1},
    )
    assert response.status_code == 409
    excursion.refresh_from_db()
    assert excursion.decision == ""


def test_the_mismatch_page_resolves_and_the_bedside_page_links_to_it(client, physician, nurse, order, mismatch):
    client.force_login(physician)
    bedside = client.get(reverse("manufacturing:bedside", args=[order.journey.public_id])).content.decode()
    url = reverse("manufacturing:mismatch_resolve", args=[order.journey.public_id])
    assert url in bedside
    page = client.get(url).content.decode()
    assert mismatch.scanned_bag in page
    response = client.post(url, {"check": mismatch.pk, "resolution": ""})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert client.post(url, {"check": mismatch.pk, "resolution": "Wrong bag returned to pharmacy"}).status_code == 302
    mismatch.refresh_from_db()
    assert mismatch.resolved_by == physician
    assert "No mismatch is waiting" in client.get(url).content.decode()


def test_the_mismatch_page_answers_409_when_another_physician_resolved_it_first(client, physician, make_user, mismatch, order):
    client.force_login(physician)
    url = reverse("manufacturing:mismatch_resolve", args=[order.journey.public_id])
    # The page was open with the mismatch on it; a colleague resolves it before the post.
    services.bedside_mismatch_resolve(actor=make_user("physician"), check_id=mismatch.id, resolution="Found the right bag")
    from manufacturing import forms as manufacturing_forms
    from manufacturing import selectors

    form = manufacturing_forms.MismatchResolveForm(
        {"check": mismatch.pk, "resolution": "x"}, checks=BedsideCheck.objects.filter(pk=mismatch.pk)
    )
    assert form.is_valid()
    with pytest.raises(MismatchAlreadyResolved):
        services.bedside_mismatch_resolve(actor=physician, check_id=mismatch.id, resolution="x")
    response = client.post(url, {"check": mismatch.pk, "resolution": "Wrong bag returned"})
    # The resolved check is no longer offered: the form says so rather than resolving twice.
    assert response.status_code == 400
    assert not selectors.mismatches_to_resolve(chain_id=mismatch.chain_id).exists()


def test_the_bag_page_shows_the_expected_coi_and_refuses_a_mistyped_or_foreign_one(client, nurse, order, other_chain):
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    client.force_login(nurse)
    url = reverse("manufacturing:bag_register", args=[order.public_id])
    assert chain.display in client.get(url).content.decode()
    mistyped = chain.identifier[:-2] + ("A" if chain.identifier[-2] != "A" else "B") + chain.identifier[-1]
    response = client.post(url, {"kind": "collection", "chain_on_label": mistyped})
    assert response.status_code == 400 and "Check character does not fit" in response.content.decode()
    response = client.post(url, {"kind": "collection", "chain_on_label": other_chain.identifier})
    assert response.status_code == 400 and "Not this journey" in response.content.decode()
    response = client.post(url, {"kind": "", "chain_on_label": chain.identifier})
    assert response.status_code == 400
    assert client.post(url, {"kind": "collection", "chain_on_label": chain.display}).status_code == 302
    assert Bag.objects.get(order=order).code == f"{chain.identifier}-C1"


def test_a_maker_client_cannot_post_a_decision(client, users, oos_order, coordinator):
    client.force_login(users["manufacturer"])
    response = client.post(
        reverse("manufacturing:exceptional_release", args=[oos_order.public_id]),
        {"reason": "x", "countersigner_username": coordinator.username, "countersigner_password": PASSWORD, "version": 1},
    )
    assert response.status_code == 403
