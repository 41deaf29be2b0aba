from django.db.models import QuerySet

from core.errors import CoreErrorCode, DomainError
from core.models import Course


def active_courses() -> QuerySet[Course]:
    return Course.objects.filter(is_active=True).order_by("id")


def get_active_course(*, course_id: int) -> Course:
    course = active_courses().filter(pk=course_id).first()
    if course is None:
        raise DomainError(CoreErrorCode.COURSE_NOT_FOUND, f"Course {course_id} does not exist.")
    return course
