-- The claim statement alone, for pgbench -M simple (bench/coupon_bench.py, variant "claim"): what
-- billing/claim_sql.py CLAIM sends, in autocommit, without the token's user read before it. The
-- hot row is locked from its UPDATE to the statement's commit. Every claim is a new user: a
-- sequence hands out user ids.

SELECT nextval('bench_coupon_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

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
