-- One checkout (POST /api/v1/orders) as the SQL the app sends, for pgbench -M simple.
-- Run by bench/checkout_bench.py; it seeds the users and passes -D first_uid=<first user id of its pool>.
--
-- Statement for statement what the app sends: core/auth.py's ACTIVE_USER, then the statements of
-- orders/services/checkout_sql.py (INSERT_ORDER; LOCK_SELECTED_CART + billing/checkout_sql.py's
-- LOCK_POINTS_ACCOUNT + LOCK_USER_COUPON as one compound query; APPLY_ORDER, with billing's
-- HOLD_FOR_ORDER CTEs inside, which take billing/ledger.py's MOVE_POINTS for the points), in the
-- same order, transaction shape and round trips, as captured with CaptureQueriesContext on Postgres
-- (literals as psycopg's client-side binding writes them). Change this file with those.
--
-- Rows get consumed, so every transaction takes a fresh user: a sequence (non-transactional,
-- shared by all clients) hands out user ids in order; checkout_bench.py seeds enough of them
-- and restores the pool (cart rows back, coupons unused) between levels, outside the timing.
-- The one statement the app does not send is that nextval(). Values the app computes in Python
-- from rows it fetched (course ids, names, prices, balance) are captured with \gset from the
-- same queries (the cart query is wrapped in a CTE that aggregates the locked rows, because
-- pgbench keeps one row per query).
-- The token's user read is sent prepared by the app (core.db.prepared_cursor), in simple mode here.

SELECT nextval('bench_pgbench_next_user') AS n \gset
\set uid :first_uid + :n - :seq_offset - 1

-- core.auth.current_user()
SELECT "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name", "email", "is_staff", "is_active", "date_joined", "username_key", "token_version" FROM core_user WHERE id = :uid AND is_active AND token_version = 0;

BEGIN;

-- INSERT_ORDER: order_no is fixed-width and increasing, like the app's timestamped one
INSERT INTO orders_order (order_no, user_id, status, pay_type, subtotal, coupon_discount, points_used, points_discount, pay_amount, idempotency_key, request_fingerprint, expires_at, cancel_reason, created_at) VALUES ('20990101000000:n', :uid, 'pending', 'alipay', 0, 0, 0, 0, 0, 'pgbench-:n', '3db97aefb70277285f032ba01a62e24d9e578ad53ecf8dc38856280056e0fabc', (now() + interval '1800 seconds')::timestamptz, '', now()::timestamptz) RETURNING id AS oid \gset

-- lock_rows(): LOCK_SELECTED_CART (with the enrolment / pending-order check; aggregated here),
-- LOCK_POINTS_ACCOUNT and LOCK_USER_COUPON, sent as one query string (one round trip) as the app does
WITH locked AS (WITH pending AS MATERIALIZED (SELECT line.course_id, pending_order.order_no FROM orders_order pending_order JOIN orders_orderline line ON line.order_id = pending_order.id WHERE pending_order.user_id = :uid AND pending_order.status = 'pending') SELECT cart.id, course.id AS course_id, course.name, course.picture_url, course.price, EXISTS (SELECT FROM core_enrollment WHERE user_id = cart.user_id AND course_id = cart.course_id) AS enrolled, (SELECT order_no FROM pending WHERE course_id = cart.course_id LIMIT 1) AS pending_order_no FROM orders_cartitem cart JOIN core_course course ON course.id = cart.course_id WHERE cart.user_id = :uid AND cart.selected AND course.is_active ORDER BY cart.id FOR UPDATE OF cart)
SELECT string_agg(id::text, ',' ORDER BY id) AS cart_ids, string_agg(course_id::text, ',' ORDER BY id) AS course_ids, array_agg(name ORDER BY id)::text AS names, array_agg(picture_url ORDER BY id)::text AS pics, array_agg(price ORDER BY id)::text AS prices, sum(price) AS subtotal, sum(price) - 6.00 AS pay_amount, bool_or(enrolled OR pending_order_no IS NOT NULL) AS owned FROM locked \;
SELECT id, user_id, balance FROM billing_pointsaccount WHERE user_id = :uid FOR UPDATE \;
SELECT id, user_id, coupon_id, name, kind, threshold, amount_off, percent_off, starts_at, ends_at, status, order_id, claimed_at FROM billing_usercoupon WHERE id = :uid AND user_id = :uid FOR UPDATE \aset

-- APPLY_ORDER: 5.00 coupon + 10 points (1.00)
WITH order_lines AS (INSERT INTO orders_orderline (order_id, course_id, name, picture_url, price) SELECT :oid, * FROM unnest('{:course_ids}'::int2[]::bigint[], ':names'::varchar[], ':pics'::varchar[], ':prices'::numeric[]::numeric[]) RETURNING id, course_id), checked_out AS (DELETE FROM orders_cartitem WHERE id = ANY('{:cart_ids}'::int4[]::bigint[])), held_coupon AS (UPDATE billing_usercoupon SET status = 'locked', order_id = :oid WHERE id = :uid), points_account AS (UPDATE billing_pointsaccount account SET balance = account.balance + total.delta FROM unnest('{:uid}'::int4[]::bigint[], '{-10}'::int2[]::bigint[]) AS total (user_id, delta) WHERE account.user_id = total.user_id RETURNING account.id, account.user_id, account.balance), points_entry AS (INSERT INTO billing_pointsentry (account_id, delta, balance_after, reason, order_id, created_at) SELECT account.id, move.delta, account.balance - move.moved_later, 'order_debit', move.order_id, now()::timestamptz FROM unnest('{:uid}'::int4[]::bigint[], '{-10}'::int2[]::bigint[], '{0}'::int2[]::bigint[], '{:oid}'::int4[]::bigint[]) WITH ORDINALITY AS move (user_id, delta, moved_later, order_id, n) JOIN points_account account USING (user_id) ORDER BY move.n RETURNING id, account_id, delta, balance_after, reason, order_id, created_at) UPDATE orders_order SET subtotal = :subtotal, coupon_discount = 5.00, points_used = 10, points_discount = 1.00, pay_amount = :pay_amount, user_coupon_id = :uid WHERE id = :oid RETURNING (SELECT array_agg(id) FROM order_lines), (SELECT array_agg(course_id) FROM order_lines);
COMMIT;
