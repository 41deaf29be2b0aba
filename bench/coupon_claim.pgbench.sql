-- A possible change, measured, not in the app (bench/coupon_bench.py, variant "cte"): the claim as
-- ONE statement in autocommit, one round trip where the app's transaction takes four (BEGIN,
-- INSERT, UPDATE, COMMIT):
--   WITH c AS (UPDATE billing_coupon ... RETURNING the terms) INSERT INTO billing_usercoupon SELECT ... FROM c
-- With the same reads before it as the app (variant "full"). A user coupon row is inserted only
-- when the UPDATE took stock, exactly like the two-statement form.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

SELECT "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined", "username_key", "token_version" FROM core_user WHERE id = :uid AND is_active AND token_version = 0;
SELECT "billing_coupon"."id", "billing_coupon"."name" AS cname, "billing_coupon"."kind", "billing_coupon"."threshold", "billing_coupon"."amount_off", "billing_coupon"."percent_off", "billing_coupon"."starts_at", "billing_coupon"."ends_at", "billing_coupon"."total_quantity", "billing_coupon"."issued_count", "billing_coupon"."created_at" FROM "billing_coupon" WHERE "billing_coupon"."id" = :coupon_id ORDER BY "billing_coupon"."id" ASC LIMIT 1 \gset

WITH c AS (UPDATE "billing_coupon" SET "issued_count" = "issued_count" + 1 WHERE "id" = :coupon_id AND "issued_count" < "total_quantity" RETURNING "id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at")
INSERT INTO "billing_usercoupon" ("user_id", "coupon_id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at", "status", "order_id", "claimed_at") SELECT :uid, c."id", c."name", c."kind", c."threshold", c."amount_off", c."percent_off", c."starts_at", c."ends_at", 'unused', NULL, now() FROM c RETURNING "billing_usercoupon"."id";
