// Order actions shared by the order list and the order page.
import { call, type ApiClient, type Schemas } from "@/api/client";

export type Order = Schemas["OrderOut"];
export type OrderStatus = Order["status"];

export function cancelOrder(api: ApiClient, orderNo: string): Promise<Order> {
  return call(api.POST("/api/v1/orders/{order_no}/cancel", { params: { path: { order_no: orderNo } } }));
}

export function fetchOrder(api: ApiClient, orderNo: string): Promise<Order> {
  return call(api.GET("/api/v1/orders/{order_no}", { params: { path: { order_no: orderNo } } }));
}
