-- A possible change, measured, not in the app (bench/coupon_bench.py, variant "cte"): the claim as
-- ONE statement in autocommit, so the coupon row lock is held for one statement and the commit,
-- not across two round trips and the Python between them:
--   WITH c AS (UPDATE billing_coupon ... RETURNING the terms) INSERT INTO billing_usercoupon SELECT ... FROM c
-- With the same reads before it as the app (variant "full"). A user coupon row is inserted only
-- when the UPDATE took stock, exactly like the two-statement form.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

SELECT "core_user"."id", "core_user"."password", "core_user"."last_login", "core_user"."is_superuser", "core_user"."username", "core_user"."first_name", "core_user"."last_name", "core_user"."email", "core_user"."is_staff", "core_user"."is_active", "core_user"."date_joined" FROM "core_user" WHERE ("core_user"."is_active" AND "core_user"."id" = :uid) ORDER BY "core_user"."id" ASC LIMIT 1;
SELECT "billing_coupon"."id", "billing_coupon"."name" AS cname, "billing_coupon"."kind", "billing_coupon"."threshold", "billing_coupon"."amount_off", "billing_coupon"."percent_off", "billing_coupon"."starts_at", "billing_coupon"."ends_at", "billing_coupon"."total_quantity", "billing_coupon"."issued_count", "billing_coupon"."created_at" FROM "billing_coupon" WHERE "billing_coupon"."id" = :coupon_id ORDER BY "billing_coupon"."id" ASC LIMIT 1 \gset
SELECT 1 AS "a" FROM "billing_usercoupon" WHERE ("billing_usercoupon"."coupon_id" = :coupon_id AND "billing_usercoupon"."user_id" = :uid) LIMIT 1;

WITH c AS (UPDATE "billing_coupon" SET "issued_count" = "issued_count" + 1 WHERE "id" = :coupon_id AND "issued_count" < "total_quantity" RETURNING "id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at")
INSERT INTO "billing_usercoupon" ("user_id", "coupon_id", "name", "kind", "threshold", "amount_off", "percent_off", "starts_at", "ends_at", "status", "order_id", "claimed_at") SELECT :uid, c."id", c."name", c."kind", c."threshold", c."amount_off", c."percent_off", c."starts_at", c."ends_at", 'unused', NULL, now() FROM c RETURNING "billing_usercoupon"."id";
