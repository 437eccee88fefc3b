from rest_framework import serializers

from contracts.models import ContractStatus


class PayerEnrolmentSerializer(serializers.Serializer):
    """What a payer needs of one enrolment, and nothing more: no name, no MRN, no notes, no free text."""

    id = serializers.UUIDField(source="public_id")
    contract = serializers.UUIDField(source="contract.public_id")
    contract_name = serializers.CharField(source="contract.name")
    product = serializers.CharField(source="contract.product_label")
    infusion_date = serializers.DateField(source="infusion_on", allow_null=True)
    milestone_date = serializers.DateField(source="milestone_on", allow_null=True)
    status = serializers.ChoiceField(choices=ContractStatus.choices)
    status_since = serializers.DateField(allow_null=True)
