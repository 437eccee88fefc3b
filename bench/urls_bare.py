from django.urls import path

from bench.views import constant_json

urlpatterns = [path("bench/constant/", constant_json)]
