// The buyer's unpaid orders: the 待支付 banner, the courses they hold (a course in a pending order
// cannot be bought again until that order is paid or cancelled), and where the cashier's return
// leads. Read from GET /orders?status=pending; orders past their deadline are left out (the server
// cancels them within a minute).
import { computed, reactive } from "vue";
import { call, type ApiClient, type Schemas } from "@/api/client";

export type Order = Schemas["OrderOut"];
/** Look again at most this often when the buyer moves between pages. */
export const PENDING_STALE_MS = 10_000;

export function createPendingOrders(api: ApiClient, now: () => number = Date.now) {
  const state = reactive({ orders: [] as Order[], loadedAt: 0, loading: null as Promise<Order[]> | null });

  function load(): Promise<Order[]> {
    state.loading ??= call(api.GET("/api/v1/orders", { params: { query: { status: "pending", page_size: 100 } } }))
      .then((page) => {
        state.orders = page.items;
        state.loadedAt = now();
        return state.orders;
      })
      .finally(() => {
        state.loading = null;
      });
    return state.loading;
  }

  /** Loads unless a recent answer is at hand; failures stay quiet (the banner is a hint). */
  function refresh(): void {
    if (now() - state.loadedAt < PENDING_STALE_MS) return;
    load().catch(() => undefined);
  }

  function clear() {
    state.orders = [];
    state.loadedAt = 0;
  }

  const open = computed(() => state.orders.filter((o) => o.status === "pending" && new Date(o.expires_at).getTime() > now()));
  /** course id -> the pending order holding it */
  const heldCourses = computed(() => new Map(open.value.flatMap((o) => o.lines.map((line) => [line.course_id, o] as const))));
  /** The order most recently placed (orders come newest first). */
  const newest = computed(() => open.value[0] ?? null);

  return { state, open, heldCourses, newest, load, refresh, clear };
}

export type PendingOrders = ReturnType<typeof createPendingOrders>;
