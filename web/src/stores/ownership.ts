// Which courses the buyer owns, as far as the API has said so. Enrolments are not exposed yet
// (no `owned` field on courses, no GET /me/courses), so today the only source is an
// `already_purchased` refusal: adding a course to the cart names it, and the checkout's details
// list `enrolled_course_ids`. When the API grows a field, feed it in `fromCourse` and nothing else
// changes: the pages ask `owns(id)`.
import { reactive } from "vue";
import type { Schemas } from "@/api/client";

export function createOwnership() {
  const owned = reactive(new Set<number>());
  return {
    owns: (courseId: number) => owned.has(courseId),
    mark(courseIds: Iterable<number>) {
      for (const id of courseIds) owned.add(id);
    },
    /** The seam for a future `owned` field on a course (GET /courses, /courses/{id}). */
    fromCourse(course: Schemas["CourseOut"]) {
      const flag = (course as { owned?: unknown }).owned;
      if (flag === true) owned.add(course.id);
      else if (flag === false) owned.delete(course.id);
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
