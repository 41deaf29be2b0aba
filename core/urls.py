from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core import bench_views, spa
from core.api_root import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("dev/alipay/", include("billing.dev_gateway.urls")),
    path("dev/wechatpay/", include("billing.wechatpay_dev_gateway.urls")),
    # bench/cart_bench.py's baseline, a bare Django view: only with BENCH_BASELINE_VIEW=1.
    *([path("bench/baseline", bench_views.baseline)] if settings.BENCH_BASELINE_VIEW else []),
    spa.urlpattern(),  # the shop pages (web/): everything not above, last
]
