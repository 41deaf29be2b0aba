// The cart as the server has it. Every total shown comes from GET /cart (selected_total is a
// decimal string); the page never adds prices up itself.
import { computed, reactive } from "vue";
import { call, type ApiClient, type Schemas } from "@/api/client";

export type Cart = Schemas["CartOut"];
export type CartItem = Schemas["CartItemOut"];

export function createCartStore(api: ApiClient) {
  const state = reactive({
    cart: null as Cart | null,
    loading: false,
    /** cart item ids with a change in flight, so their checkboxes and buttons wait */
    busy: new Set<number>(),
  });

  async function load(): Promise<Cart> {
    state.loading = true;
    try {
      state.cart = await call(api.GET("/api/v1/cart"));
      return state.cart;
    } finally {
      state.loading = false;
    }
  }

  async function withItem<T>(id: number, action: () => Promise<T>): Promise<T> {
    state.busy.add(id);
    try {
      return await action();
    } finally {
      state.busy.delete(id);
    }
  }

  async function add(courseId: number): Promise<CartItem> {
    const item = await call(api.POST("/api/v1/cart/items", { body: { course_id: courseId } }));
    await load();
    return item;
  }

  async function setSelected(item: CartItem, selected: boolean): Promise<void> {
    await withItem(item.id, async () => {
      try {
        await call(api.PATCH("/api/v1/cart/items/{item_id}", { params: { path: { item_id: item.id } }, body: { selected } }));
      } finally {
        // Totals come from the server, and so does the truth after a failure.
        await load();
      }
    });
  }

  async function selectAll(selected: boolean): Promise<void> {
    state.cart = await call(api.PUT("/api/v1/cart/selection", { body: { selected } }));
  }

  async function remove(item: CartItem): Promise<void> {
    await withItem(item.id, async () => {
      try {
        await call(api.DELETE("/api/v1/cart/items/{item_id}", { params: { path: { item_id: item.id } } }));
      } finally {
        await load();
      }
    });
  }

  function clear() {
    state.cart = null;
  }

  const count = computed(() => state.cart?.count ?? 0);
  const allSelected = computed(() => !!state.cart && state.cart.count > 0 && state.cart.items.every((i) => i.selected));
  const someSelected = computed(() => !!state.cart && state.cart.items.some((i) => i.selected) && !allSelected.value);
  const courseIds = computed(() => new Set(state.cart?.items.map((i) => i.course.id) ?? []));

  return { state, count, allSelected, someSelected, courseIds, load, add, setSelected, selectAll, remove, clear };
}

export type CartStore = ReturnType<typeof createCartStore>;
