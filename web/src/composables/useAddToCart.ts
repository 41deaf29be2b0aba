import { ref } from "vue";
import { useRoute, useRouter } from "vue-router";
import { ApiError, call, type Schemas } from "@/api/client";
import { i18n } from "@/i18n";
import { errorText } from "@/i18n/errors";
import { useShop, type Shop } from "@/shop";
import { toastError, toastSuccess } from "@/ui/feedback";

type CourseRef = Pick<Schemas["CourseOut"], "id" | "name">;

/** Adds a course and says how it went; a course the API says is already owned is marked so. */
export async function addToCart(shop: Shop, course: CourseRef): Promise<void> {
  const { t } = i18n.global;
  try {
    await shop.cart.add(course.id);
    toastSuccess(t("course.added", { name: course.name }));
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_in_cart") {
      await shop.cart.load().catch(() => undefined);
    } else if (error instanceof ApiError && error.code === "already_purchased") {
      shop.ownership.mark([course.id]);
      toastSuccess(t("course.alreadyOwned", { name: course.name }));
    } else {
      toastError(errorText(error));
    }
  }
}

/** After logging in or signing up: the course the visitor tried to add (?add=<id>) goes in. */
export async function addAfterSignIn(shop: Shop, courseId: unknown): Promise<void> {
  const id = Number(courseId);
  if (!Number.isInteger(id) || id <= 0) return;
  try {
    const course = await call(shop.api.GET("/api/v1/courses/{course_id}", { params: { path: { course_id: id } } }));
    await addToCart(shop, course);
  } catch (error) {
    toastError(errorText(error));
  }
}

/** The add-to-cart button's action: logged out, it goes by the login page and comes back. */
export function useAddToCart() {
  const shop = useShop();
  const router = useRouter();
  const route = useRoute();
  const adding = ref(new Set<number>());
  async function add(course: CourseRef) {
    if (!shop.session.isLoggedIn.value) {
      await router.push({ name: "login", query: { next: route.fullPath, add: String(course.id) } });
      return;
    }
    adding.value.add(course.id);
    try {
      await addToCart(shop, course);
    } finally {
      adding.value.delete(course.id);
    }
  }
  return { add, adding };
}
