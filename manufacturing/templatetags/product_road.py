"""The product's road in the patient header: the chain of identity and the order's status and flags.

A template tag, so that journeys' patient page shows it without journeys importing manufacturing."""

from django import template

from manufacturing import selectors

register = template.Library()


@register.inclusion_tag("manufacturing/partials/patient_header.html", takes_context=True)
def product_road(context, journey):
    if journey is None:
        return {"journey": None, "may": context.get("may", {})}
    if not journey.protocol.collection:
        # Off the shelf: no order and no chain of the patient's own; the unit reserved from stock, one query.
        unit = selectors.stock_unit_for_journey(journey_id=journey.id)
        return {"journey": journey, "may": context.get("may", {}), "off_the_shelf": True, "unit": unit}
    # One query: the chain of identity is assigned with the journey's first order, so no order, no chain.
    order = selectors.latest_order_for_journey(journey_id=journey.id)
    chain = getattr(order.journey, "chain_of_identity", None) if order is not None else None
    return {"journey": journey, "may": context.get("may", {}), "chain": chain, "order": order}
