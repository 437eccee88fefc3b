import pytest

from tests.manufacturing.builders import finish_collection_stage, make_plant, make_product


@pytest.fixture
def product(db):
    return make_product()


@pytest.fixture
def plant(product):
    return make_plant(product)


@pytest.fixture
def journey_in_stage_2(journey, nurse, physician, coordinator):
    return finish_collection_stage(journey, nurse=nurse, physician=physician, coordinator=coordinator)


@pytest.fixture
def order(journey_in_stage_2, coordinator, product, plant):
    from manufacturing import services

    return services.order_request(actor=coordinator, journey_id=journey_in_stage_2.id, product_id=product.id, plant_id=plant.id)
