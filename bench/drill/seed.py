"""The drill's data: every user has a cart of 1-3 courses, one unused 5.00-off coupon (user
coupon id == user id) and 1,000,000 points with the matching `grant` ledger entry."""

from __future__ import annotations

from decimal import Decimal

from common.db import psql

COURSES = 20
COUPON_OFF = Decimal("5.00")
POINTS_GRANT = 1_000_000
POINTS_PER_YUAN = 10


def user_courses(uid: int) -> list[int]:
    """The courses seeded into user uid's cart (the same formula as the SQL below)."""
    return [((uid + k) % COURSES) + 1 for k in range(1 + uid % 3)]


def course_price(course_id: int) -> Decimal:
    return Decimal(50 + course_id)


def seed(db: str, users: int) -> None:
    psql(
        db,
        f"""
        BEGIN;
        INSERT INTO core_course (id, name, description, picture_url, price, is_active, created_at)
        SELECT g, 'Drill course ' || g, 'Seeded by bench/fault_drill.py', 'https://example.invalid/c/' || g || '.png',
               (50 + g)::numeric(10, 2), true, now()
        FROM generate_series(1, {COURSES}) g;
        INSERT INTO billing_coupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                    total_quantity, issued_count, created_at)
        VALUES (1, 'Drill {COUPON_OFF} off', 'fixed', 0, {COUPON_OFF}, NULL, now() - interval '1 day',
                now() + interval '30 days', {users}, {users}, now());
        INSERT INTO core_user (id, password, last_login, is_superuser, username, first_name, last_name, email,
                               is_staff, is_active, date_joined, username_key, token_version)
        SELECT g, '!drill', NULL, false, 'drill' || g, '', '', '', false, true, now(), 'drill' || g, 0
        FROM generate_series(1, {users}) g;
        INSERT INTO orders_cartitem (selected, created_at, course_id, user_id)
        SELECT true, now(), ((g + k) % {COURSES}) + 1, g
        FROM generate_series(1, {users}) g CROSS JOIN generate_series(0, 2) k WHERE k < 1 + g % 3 ORDER BY g, k;
        INSERT INTO billing_usercoupon (id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at,
                                        status, claimed_at, coupon_id, order_id, user_id)
        SELECT g, c.name, c.kind, c.threshold, c.amount_off, c.percent_off, c.starts_at, c.ends_at,
               'unused', now(), c.id, NULL, g
        FROM generate_series(1, {users}) g CROSS JOIN billing_coupon c;
        INSERT INTO billing_pointsaccount (id, balance, user_id)
        SELECT g, {POINTS_GRANT}, g FROM generate_series(1, {users}) g;
        INSERT INTO billing_pointsentry (delta, balance_after, reason, created_at, account_id, order_id)
        SELECT {POINTS_GRANT}, {POINTS_GRANT}, 'grant', now(), g, NULL FROM generate_series(1, {users}) g;
        SELECT setval(pg_get_serial_sequence('core_course', 'id'), {COURSES});
        SELECT setval(pg_get_serial_sequence('billing_coupon', 'id'), 1);
        SELECT setval(pg_get_serial_sequence('core_user', 'id'), {users});
        SELECT setval(pg_get_serial_sequence('billing_usercoupon', 'id'), {users});
        SELECT setval(pg_get_serial_sequence('billing_pointsaccount', 'id'), {users});
        COMMIT;
        VACUUM ANALYZE;
        """,
    )
