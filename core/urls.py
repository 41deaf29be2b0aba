from django.contrib import admin
from django.urls import include, path

from core import spa
from core.api_root import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("dev/alipay/", include("billing.dev_gateway.urls")),
    spa.urlpattern(),  # the shop pages (web/): everything not above, last
]
