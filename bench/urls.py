"""The product's URLs plus two constant answers for the benchmark; never served by the product."""

from django.urls import path

from bench.views import ApiConstantView, constant_json
from carclinic.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    # Under /api/v1/ (ahead of the API's catch-all), so it is served exactly as the API's own calls are.
    path("api/v1/bench-constant/", ApiConstantView.as_view()),
    *product_urlpatterns,
    # A constant JSON answer through the product's own middleware.
    path("bench/constant/", constant_json),
]
