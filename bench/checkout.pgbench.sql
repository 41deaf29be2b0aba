-- One checkout (POST /api/v1/orders) as the SQL the app sends, for pgbench -M simple.
-- Run by bench/checkout_bench.py; it seeds the users and passes -D first_uid=<first user id of its pool>.
--
-- Statement for statement what Django sends since commit f56c893 (captured with
-- CaptureQueriesContext on Postgres): the auth user lookup, then BEGIN / order insert / cart rows
-- FOR UPDATE / enrolment check / the user's other pending orders (none here, so the order-line
-- query that would follow is not sent) / points account FOR UPDATE / user coupon FOR UPDATE /
-- order lines (UNNEST bulk insert) / cart delete / coupon update / points update / ledger insert /
-- order update / COMMIT. No replay look-up before the insert, no SET LOCAL lock_timeout
-- (lock_timeout is a connection option now), no reads after the commit (the response is built
-- from the objects in memory). Each statement is a separate round trip, as from Django (no
-- pipelining, no prepared plans).
--
-- Rows get consumed, so every transaction takes a fresh user: a sequence (non-transactional,
-- shared by all clients) hands out user ids in order; checkout_bench.py seeds enough of them
-- and restores the pool (cart rows back, coupons unused) between levels, outside the timing.
-- The one statement the app does not send is that nextval(). Values the app computes in Python
-- from rows it fetched (course ids, names, prices, balance) are captured with \gset from the
-- same queries (the cart query is wrapped in a CTE that aggregates the locked rows).
-- Not here: the `SELECT 1` Django sends per request (CONN_HEALTH_CHECKS) - that is app overhead.
-- Django sends a one-line cart's order line as INSERT ... VALUES; this script always uses UNNEST.
-- Columns the app leaves NULL (pay_requested_at, ...) are left out and default to NULL.

SELECT nextval('bench_pgbench_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

-- JWTAuth: User.objects.filter(pk=..., is_active=True).first()
SELECT "core_user"."id", "core_user"."password", "core_user"."last_login", "core_user"."is_superuser", "core_user"."username", "core_user"."first_name", "core_user"."last_name", "core_user"."email", "core_user"."is_staff", "core_user"."is_active", "core_user"."date_joined" FROM "core_user" WHERE ("core_user"."is_active" AND "core_user"."id" = :uid) ORDER BY "core_user"."id" ASC LIMIT 1;

BEGIN;

-- Order.objects.create(...): order_no is fixed-width and increasing, like the app's timestamped one
INSERT INTO "orders_order" ("order_no", "user_id", "status", "pay_type", "subtotal", "coupon_discount", "points_used", "points_discount", "pay_amount", "user_coupon_id", "idempotency_key", "request_fingerprint", "expires_at", "paid_at", "cancelled_at", "cancel_reason", "refunded_at", "trade_no", "created_at") VALUES ('20990101000000:n', :uid, 'pending', 'alipay', 0.00, 0.00, 0, 0.00, 0.00, NULL, 'pgbench-:n', '3db97aefb70277285f032ba01a62e24d9e578ad53ecf8dc38856280056e0fabc', now() + interval '1800 seconds', NULL, NULL, '', NULL, '', now()) RETURNING "orders_order"."id" AS oid \gset

-- _lock_selected_cart(): the same SELECT ... FOR UPDATE OF orders_cartitem, aggregated here
-- because pgbench can only keep one row (the app keeps them in Python).
WITH locked AS (SELECT "orders_cartitem"."id", "orders_cartitem"."user_id", "orders_cartitem"."course_id", "orders_cartitem"."selected", "orders_cartitem"."created_at", "core_course"."id" AS cid, "core_course"."name", "core_course"."description", "core_course"."picture_url", "core_course"."price", "core_course"."is_active", "core_course"."created_at" AS ccreated FROM "orders_cartitem" INNER JOIN "core_course" ON ("orders_cartitem"."course_id" = "core_course"."id") WHERE ("orders_cartitem"."selected" AND "orders_cartitem"."user_id" = :uid) ORDER BY "orders_cartitem"."id" ASC FOR UPDATE OF "orders_cartitem")
SELECT string_agg(id::text, ',' ORDER BY id) AS cart_ids, string_agg(course_id::text, ',' ORDER BY id) AS course_ids, array_agg(name ORDER BY id)::text AS names, array_agg(picture_url ORDER BY id)::text AS pics, array_agg(price ORDER BY id)::text AS prices, count(*) AS n_items, sum(price) AS subtotal, sum(price) - 6.00 AS pay_amount FROM locked \gset

-- check_not_owned(): enrolments, then the user's other pending orders (their lines only if there are any)
SELECT "core_enrollment"."course_id" AS "course_id" FROM "core_enrollment" WHERE ("core_enrollment"."course_id" IN (:course_ids) AND "core_enrollment"."user_id" = :uid);
SELECT "orders_order"."id" AS "pk", "orders_order"."order_no" AS "order_no" FROM "orders_order" WHERE ("orders_order"."status" = 'pending' AND "orders_order"."user_id" = :uid AND NOT ("orders_order"."id" = :oid)) ORDER BY "orders_order"."created_at" DESC, "orders_order"."id" DESC;

-- billing.lock_points_account() / lock_user_coupon()
SELECT "billing_pointsaccount"."id" AS account_id, "billing_pointsaccount"."user_id", "billing_pointsaccount"."balance" AS balance FROM "billing_pointsaccount" WHERE "billing_pointsaccount"."user_id" = :uid ORDER BY "billing_pointsaccount"."id" ASC LIMIT 1 FOR UPDATE \gset
SELECT "billing_usercoupon"."id", "billing_usercoupon"."user_id", "billing_usercoupon"."coupon_id", "billing_usercoupon"."name", "billing_usercoupon"."kind", "billing_usercoupon"."threshold", "billing_usercoupon"."amount_off", "billing_usercoupon"."percent_off", "billing_usercoupon"."starts_at", "billing_usercoupon"."ends_at", "billing_usercoupon"."status", "billing_usercoupon"."order_id", "billing_usercoupon"."claimed_at" FROM "billing_usercoupon" WHERE ("billing_usercoupon"."id" = :uid AND "billing_usercoupon"."user_id" = :uid) ORDER BY "billing_usercoupon"."claimed_at" DESC, "billing_usercoupon"."id" DESC LIMIT 1 FOR UPDATE;

-- OrderLine.objects.bulk_create(...) (Django 5.2 sends UNNEST on Postgres)
INSERT INTO "orders_orderline" ("order_id", "course_id", "name", "picture_url", "price") SELECT * FROM UNNEST(array_fill(:oid::bigint, ARRAY[:n_items]), ('{:course_ids}'::int2[])::bigint[], (':names')::varchar[], (':pics')::varchar[], (':prices'::numeric[])::numeric[]) RETURNING "orders_orderline"."id";

DELETE FROM "orders_cartitem" WHERE "orders_cartitem"."id" IN (:cart_ids);

-- billing.lock_coupon_for_order(), debit_points()
UPDATE "billing_usercoupon" SET "status" = 'locked', "order_id" = :oid WHERE "billing_usercoupon"."id" = :uid;
\set new_balance :balance - 10
UPDATE "billing_pointsaccount" SET "balance" = :new_balance WHERE "billing_pointsaccount"."id" = :account_id;
INSERT INTO "billing_pointsentry" ("account_id", "delta", "balance_after", "reason", "order_id", "created_at") VALUES (:account_id, -10, :new_balance, 'order_debit', :oid, now()) RETURNING "billing_pointsentry"."id";

-- order.save(update_fields=[...]): 5.00 coupon + 10 points (1.00)
UPDATE "orders_order" SET "subtotal" = :subtotal, "coupon_discount" = 5.00, "points_used" = 10, "points_discount" = 1.00, "pay_amount" = :pay_amount, "user_coupon_id" = :uid WHERE "orders_order"."id" = :oid;
COMMIT;
