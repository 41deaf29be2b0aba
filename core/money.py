"""Money is Decimal with two places, from the database to the JSON string; never float."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_cents(amount: Decimal) -> Decimal:
    """Rounded to the cent, half up (DESIGN.md "Pricing")."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
