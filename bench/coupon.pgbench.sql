-- One flash-sale claim (POST /api/v1/coupons/{id}/claim) as the SQL the app sends, for pgbench -M simple.
-- Run by bench/coupon_bench.py (variant "full"); it seeds the users and passes
-- -D first_uid=<first user id of its pool> -D seq_offset=<first sequence value> -D coupon_id=<hot coupon>.
--
-- Statement for statement what the endpoint sends (captured with CaptureQueriesContext on
-- Postgres): the JWT user look-up (core/auth.py ACTIVE_USER), then the claim, one statement in
-- autocommit (billing/claim_sql.py CLAIM; tests/test_bench_scripts.py keeps the two the same).
-- Each statement is a separate round trip, as from Django (the app sends both as prepared
-- statements, core.db.prepared_cursor; pgbench here in simple mode, as every variant). Not here:
-- app overhead. Every claim is a new user: a sequence hands out user ids.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

-- core.auth.current_user()
SELECT "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined", "username_key", "token_version" FROM core_user WHERE id = :uid AND is_active AND token_version = 0;

-- billing.services.claim_coupon()
WITH taken AS (
    UPDATE billing_coupon SET issued_count = issued_count + 1
    WHERE id = :coupon_id AND issued_count < total_quantity AND starts_at <= now() AND now() < ends_at
    RETURNING id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at
)
INSERT INTO billing_usercoupon (user_id, coupon_id, name, kind, threshold, amount_off, percent_off, starts_at,
    ends_at, status, order_id, claimed_at)
SELECT :uid, id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at, 'unused', NULL, now()
FROM taken
RETURNING id, user_id, coupon_id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at, status, order_id, claimed_at;
