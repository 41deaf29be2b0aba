from django.db.models import Exists, OuterRef, QuerySet, Value

from core.errors import CoreErrorCode, DomainError
from core.models import Course, Enrollment, User


def active_courses(*, viewer: User | None = None) -> QuerySet[Course]:
    """Courses on sale, each with `owned`: whether `viewer` is enrolled in it (always False for
    no viewer), asked inside the same query, so a page of the catalogue costs no extra one."""
    courses = Course.objects.filter(is_active=True).order_by("id")
    if viewer is None:
        return courses.annotate(owned=Value(False))
    return courses.annotate(owned=Exists(Enrollment.objects.filter(user=viewer, course=OuterRef("pk"))))


def get_active_course(*, course_id: int, viewer: User | None = None) -> Course:
    course = active_courses(viewer=viewer).filter(pk=course_id).first()
    if course is None:
        raise DomainError(CoreErrorCode.COURSE_NOT_FOUND, f"Course {course_id} does not exist.")
    return course
