// Which courses the buyer owns, as the API has said: `owned` on GET /courses and /courses/{id}
// (sent with the buyer's token), the enrolments GET /me/courses lists, and an `already_purchased`
// refusal (adding a course to the cart names it, and the checkout's details list
// `enrolled_course_ids`). The latest answer wins: a course refunded since it was marked comes back
// `owned: false` and is offered again. The pages ask `owns(id)`.
import { reactive } from "vue";
import type { Schemas } from "@/api/client";

export function createOwnership() {
  const owned = reactive(new Set<number>());
  return {
    owns: (courseId: number) => owned.has(courseId),
    mark(courseIds: Iterable<number>) {
      for (const id of courseIds) owned.add(id);
    },
    /** A course as GET /courses and /courses/{id} answer it, with the caller's `owned`. */
    fromCourse(course: Pick<Schemas["CatalogCourseOut"], "id" | "owned">) {
      if (course.owned) owned.add(course.id);
      else owned.delete(course.id);
    },
    clear: () => owned.clear(),
  };
}

export type Ownership = ReturnType<typeof createOwnership>;

/** What an `already_purchased` refusal names: courses owned, and courses held by a pending order. */
export function purchaseConflicts(details: unknown): { enrolled: number[]; pending: Map<number, string> } {
  const d = (details ?? {}) as { enrolled_course_ids?: unknown; pending?: unknown };
  const enrolled = Array.isArray(d.enrolled_course_ids) ? d.enrolled_course_ids.filter((id): id is number => typeof id === "number") : [];
  const pending = new Map<number, string>();
  if (d.pending && typeof d.pending === "object") {
    for (const [courseId, orderNo] of Object.entries(d.pending as Record<string, unknown>)) {
      if (typeof orderNo === "string" && /^\d+$/.test(courseId)) pending.set(Number(courseId), orderNo);
    }
  }
  return { enrolled, pending };
}
