from django.http import JsonResponse


def constant_json(request):
    return JsonResponse({"status": "ok", "bench": True})
