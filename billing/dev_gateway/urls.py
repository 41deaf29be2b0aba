from django.urls import path

from billing.dev_gateway import views

app_name = "dev_gateway"

urlpatterns = [
    # Alipay's own path name, so a gateway URL swap is the only difference from the real thing.
    path("gateway.do", views.gateway, name="gateway"),
    path("pay/<str:out_trade_no>", views.pay, name="pay"),
]
