"""The pgbench scripts the benchmarks compare the API with send the statements the app sends: a
baseline that drifted from the code would measure something else."""

import re
from pathlib import Path

import pytest

from billing.claim_sql import CLAIM
from core.auth import CURRENT_USER

BENCH = Path(__file__).resolve().parent.parent / "bench"


def normalised(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().rstrip(";")


def statements(script: str) -> list[str]:
    """The script's SQL statements (comments and pgbench meta-commands left out; `\\gset` ends a
    statement as `;` does)."""
    lines = (BENCH / script).read_text().replace("\\gset", ";").splitlines()
    text = "\n".join(line for line in lines if not line.startswith(("--", "\\")))
    return [normalised(part) for part in text.split(";") if part.strip()]


def as_pgbench(sql: str, **variables: str) -> str:
    for name, value in variables.items():
        sql = sql.replace(f"%({name})s", value)
    return normalised(sql)


CLAIM_IN_PGBENCH = as_pgbench(CLAIM, coupon_id=":coupon_id", user_id=":uid", now="now()")


@pytest.mark.parametrize("script", ["coupon.pgbench.sql", "coupon_claim.pgbench.sql"])
def test_the_coupon_scripts_send_the_claim_statement_of_billing(script):
    assert CLAIM_IN_PGBENCH in statements(script)


def test_the_full_coupon_script_reads_the_tokens_user_as_the_app_does():
    user_read = normalised(CURRENT_USER.replace("%s", ":uid", 1).replace("%s", "0", 1))
    assert statements("coupon.pgbench.sql")[1:] == [user_read, CLAIM_IN_PGBENCH]
