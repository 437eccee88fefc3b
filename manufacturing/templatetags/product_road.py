"""The product's road in the patient header: the chain of identity and the order's status and flags.

A template tag, so that journeys' patient page shows it without journeys importing manufacturing."""

from django import template

from manufacturing import selectors

register = template.Library()


@register.inclusion_tag("manufacturing/partials/patient_header.html", takes_context=True)
def product_road(context, journey):
    if journey is None:
        return {"journey": None, "may": context.get("may", {})}
    return {"journey": journey, "may": context.get("may", {}),
            "chain": selectors.chain_for_journey(journey_id=journey.id),
            "order": selectors.latest_order_for_journey(journey_id=journey.id)}
