-- The hot-row transaction of a coupon claim alone, for pgbench -M simple (bench/coupon_bench.py,
-- variant "tx"): BEGIN / INSERT of the user coupon / conditional UPDATE of the coupon row / COMMIT,
-- as billing.services.claim_coupon sent them until it became one statement (coupon_claim.pgbench.sql),
-- without the reads before it: the baseline the flash-sale target is set against (BENCHMARKS.md).
-- Every claim is a new user: a sequence hands out user ids.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

BEGIN;
INSERT INTO "billing_usercoupon" ("user_id", "coupon_id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at", "status", "order_id", "claimed_at") VALUES (:uid, :coupon_id, 'Bench flash sale', 'fixed', 0.00, 5.00, NULL, '2000-01-01 00:00:00+00'::timestamptz, '2999-01-01 00:00:00+00'::timestamptz, 'unused', NULL, now()) RETURNING "billing_usercoupon"."id";
UPDATE "billing_coupon" SET "issued_count" = ("billing_coupon"."issued_count" + 1) WHERE ("billing_coupon"."issued_count" < ("billing_coupon"."total_quantity") AND "billing_coupon"."id" = :coupon_id);
COMMIT;
