from rest_framework import serializers

from manufacturing.models import CustodyKind, OrderStatus
from manufacturing.transitions import MOVABLE_BY_HAND


def order_etag(order) -> str:
    return f'"{order.public_id}.{order.version}"'


def parse_order_etag(value: str):
    value = (value or "").strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    public_id, _, version = value.rpartition(".")
    if not public_id or not version.isdigit():
        return None
    return public_id, int(version)


class QcResultSerializer(serializers.Serializer):
    criterion = serializers.CharField()
    result = serializers.CharField()
    limit = serializers.SerializerMethodField()
    within_specification = serializers.BooleanField()

    def get_limit(self, row) -> str:
        return f"{row.comparison} {row.limit}{' ' + row.unit if row.unit else ''}"


class CustodyEventSerializer(serializers.Serializer):
    bag = serializers.CharField(source="bag.code")
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    handled_by = serializers.CharField()
    location = serializers.CharField()
    temperature_celsius = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)


class OrderSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField()
    maker = serializers.CharField(source="product.maker.name")
    product = serializers.CharField(source="product.name")
    plant = serializers.CharField(source="plant.name")
    chain_of_identity = serializers.SerializerMethodField()
    lot_number = serializers.CharField()
    expected_release = serializers.DateField(allow_null=True)
    released_at = serializers.DateTimeField(allow_null=True)
    exceptional_release = serializers.BooleanField()
    version = serializers.IntegerField()
    qc_results = QcResultSerializer(many=True)

    def get_chain_of_identity(self, order) -> str | None:
        chain = getattr(order.journey, "chain_of_identity", None)
        return chain.identifier if chain else None


class OrderStatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=sorted(MOVABLE_BY_HAND))
    lot_number = serializers.CharField(required=False, max_length=40)
    expected_release = serializers.DateField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class OrderQcInputSerializer(serializers.Serializer):
    lot_number = serializers.CharField(max_length=40)
    results = serializers.DictField(child=serializers.CharField(max_length=40))


class CustodyInputSerializer(serializers.Serializer):
    bag = serializers.CharField(max_length=40, help_text="The bag id printed on its label.")
    kind = serializers.ChoiceField(choices=CustodyKind.choices)
    at = serializers.DateTimeField()
    handled_by = serializers.CharField(max_length=120)
    location = serializers.CharField(max_length=160)
    temperature_celsius = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True)


ORDER_STATUSES = OrderStatus.values
