from django.urls import path

from billing.wechatpay_dev_gateway import views

app_name = "wechatpay_dev_gateway"

urlpatterns = [
    path("", views.home, name="home"),
    # WeChat Pay API v3's own paths, so the API base is the only difference from the real thing.
    path("v3/pay/transactions/native", views.native_order, name="native"),
    path("v3/pay/transactions/h5", views.h5_order, name="h5_order"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>", views.query_trade, name="query"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>/close", views.close_trade, name="close"),
    path("v3/refund/domestic/refunds", views.refund, name="refund"),
    path("v3/refund/domestic/refunds/<str:out_refund_no>", views.query_refund, name="query_refund"),
    # The buyer's side: what a scanned code_url and an h5_url open, and their Pay button.
    path("scanned/<str:prepay_id>", views.scanned, name="scanned"),
    path("h5/checkmweb", views.h5, name="h5"),
    path("pay/<str:prepay_id>", views.pay, name="pay"),
]
