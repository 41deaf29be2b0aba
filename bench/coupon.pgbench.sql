-- One flash-sale claim (POST /api/v1/coupons/{id}/claim) as the SQL the app sends, for pgbench -M simple.
-- Run by bench/coupon_bench.py (variant "full"); it seeds the users and passes
-- -D first_uid=<first user id of its pool> -D seq_offset=<first sequence value> -D coupon_id=<hot coupon>.
--
-- Statement for statement what billing.services.claim_coupon sends (captured with
-- CaptureQueriesContext on Postgres): the JWT user look-up (core/auth.py ACTIVE_USER), the coupon
-- read, then BEGIN / the user coupon INSERT (a second claim by the same user fails here, on the
-- unique index) / the conditional UPDATE of the coupon row (the hot row: every claim waits for
-- the previous one's COMMIT here) / COMMIT. Each statement is a separate round trip, as from
-- Django. Not here: the `SELECT 1` Django sends per request (CONN_HEALTH_CHECKS), app overhead.
-- Every claim is a new user: a sequence hands out user ids.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

-- core.auth.current_user()
SELECT "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined", "username_key", "token_version" FROM core_user WHERE id = :uid AND is_active AND token_version = 0;

-- Coupon.objects.filter(pk=coupon_id).first() (the terms are copied into the user coupon)
SELECT "billing_coupon"."id", "billing_coupon"."name" AS cname, "billing_coupon"."kind", "billing_coupon"."threshold", "billing_coupon"."amount_off", "billing_coupon"."percent_off", "billing_coupon"."starts_at", "billing_coupon"."ends_at", "billing_coupon"."total_quantity", "billing_coupon"."issued_count", "billing_coupon"."created_at" FROM "billing_coupon" WHERE "billing_coupon"."id" = :coupon_id ORDER BY "billing_coupon"."id" ASC LIMIT 1 \gset

BEGIN;
INSERT INTO "billing_usercoupon" ("user_id", "coupon_id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at", "status", "order_id", "claimed_at") VALUES (:uid, :coupon_id, ':cname', 'fixed', 0.00, 5.00, NULL, ':starts_at'::timestamptz, ':ends_at'::timestamptz, 'unused', NULL, now()) RETURNING "billing_usercoupon"."id";
UPDATE "billing_coupon" SET "issued_count" = ("billing_coupon"."issued_count" + 1) WHERE ("billing_coupon"."issued_count" < ("billing_coupon"."total_quantity") AND "billing_coupon"."id" = :coupon_id);
COMMIT;
