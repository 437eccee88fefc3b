"""Response headers Django does not send itself (issue 12, finding 8).

* `Permissions-Policy`: the product uses no camera, microphone, location, payment or USB; nothing it embeds
  may ask for them either.
* `Cache-Control: no-store` on every JSON answer of the API: lists, search, FHIR, status and their errors
  carry patient data, which must not stay in a browser's or a proxy's cache. ETags still work: a client keeps
  the ETag itself and sends If-None-Match; the answer is 304 as before, also no-store.
"""

from carclinic.middleware import API_PREFIX

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "interest-cohort",
    )
)


class SecurityHeaders:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        content_type = response.get("Content-Type", "")
        if request.path_info.startswith(API_PREFIX) and (
            content_type.startswith(("application/json", "application/fhir+json")) or response.status_code == 304
        ):
            response["Cache-Control"] = "no-store"
        return response
