"""The one table of allowed manufacturing-order transitions, and the guards services call before they
change anything."""

from manufacturing.errors import CustodyOutOfOrder, MaterialQuarantined, OrderTransitionNotAllowed, OutOfSpecification
from manufacturing.models import CUSTODY_PATH, BagStatus, OrderStatus

S = OrderStatus
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    S.REQUESTED: frozenset({S.SLOT_CONFIRMED, S.CANCELLED}),
    S.SLOT_CONFIRMED: frozenset({S.MATERIAL_RECEIVED, S.CANCELLED}),
    S.MATERIAL_RECEIVED: frozenset({S.IN_PRODUCTION, S.CANCELLED}),
    S.IN_PRODUCTION: frozenset({S.QC_TESTING, S.CANCELLED}),
    # Released and OOS are reached only through the QC results (order_qc_record), never by a status move.
    S.QC_TESTING: frozenset({S.RELEASED, S.OUT_OF_SPECIFICATION, S.CANCELLED}),
    S.OUT_OF_SPECIFICATION: frozenset({S.RELEASED, S.RE_MANUFACTURE, S.RE_COLLECTION, S.CANCELLED}),
    S.RELEASED: frozenset(),
    S.RE_MANUFACTURE: frozenset(),
    S.RE_COLLECTION: frozenset(),
    S.CANCELLED: frozenset(),
}

# What a plain status move may do; the rest has its own service (QC, exceptional release, repeats).
MOVABLE_BY_HAND = frozenset({S.SLOT_CONFIRMED, S.MATERIAL_RECEIVED, S.IN_PRODUCTION, S.QC_TESTING, S.CANCELLED})


def guard_order(order, to_status: str, *, by_hand: bool = False) -> None:
    if to_status not in ORDER_TRANSITIONS[order.status]:
        raise OrderTransitionNotAllowed(
            f"An order that is {order.get_status_display().lower()} cannot become {OrderStatus(to_status).label.lower()}."
        )
    if by_hand and to_status not in MOVABLE_BY_HAND:
        raise OrderTransitionNotAllowed(
            f"'{OrderStatus(to_status).label}' follows from the QC results or a physician's decision, not a status move."
        )
    if to_status == S.RELEASED and order.status == S.OUT_OF_SPECIFICATION and not order.exceptional_release:
        raise OutOfSpecification(
            "This product is out of specification: it cannot be released except by a "
            "physician's exceptional release with a second signature."
        )


def guard_material_usable(bags) -> None:
    """Nothing made from, or given from, quarantined material moves on."""
    for bag in bags:
        if bag.status == BagStatus.QUARANTINED:
            raise MaterialQuarantined(f"Bag {bag.code} is quarantined after an excursion; a physician decides first.")


def next_custody_kind(bag, recorded: list[str]) -> str | None:
    path = CUSTODY_PATH[bag.kind]
    return path[len(recorded)] if len(recorded) < len(path) else None


def guard_custody(bag, recorded: list[str], kind: str, last_at, at) -> int:
    """The place `kind` takes on the bag's path; refuses anything out of order. Returns its position."""
    if bag.status == BagStatus.QUARANTINED:
        raise MaterialQuarantined(f"Bag {bag.code} is quarantined after an excursion; a physician decides first.")
    if bag.status in (BagStatus.DISCARDED, BagStatus.INFUSED):
        raise CustodyOutOfOrder(f"Bag {bag.code} is {bag.get_status_display().lower()}; its custody is closed.")
    path = CUSTODY_PATH[bag.kind]
    if kind not in path:
        raise CustodyOutOfOrder(f"A {bag.get_kind_display().lower()} has no '{kind}' hand-off.")
    expected = next_custody_kind(bag, recorded)
    if kind != expected:
        from manufacturing.models import CustodyKind

        if kind in recorded:
            raise CustodyOutOfOrder(f"'{CustodyKind(kind).label}' is already recorded for bag {bag.code}.")
        raise CustodyOutOfOrder(
            f"'{CustodyKind(kind).label}' cannot come before '{CustodyKind(expected).label}' for bag {bag.code}."
        )
    if last_at is not None and at < last_at:
        raise CustodyOutOfOrder("A hand-off cannot be earlier than the one before it.")
    return path.index(kind)
