from django.http import JsonResponse
from rest_framework.response import Response

from api.base import ApiV1View


def constant_json(request):
    return JsonResponse({"status": "ok", "bench": True})


class ApiConstantView(ApiV1View):
    """A constant body behind the API's own key check, throttle and renderer: the status call minus its
    database read, so the benchmark can tell the framework's share from the query's."""

    def get(self, request):
        return Response({"status": "ok", "bench": True})
