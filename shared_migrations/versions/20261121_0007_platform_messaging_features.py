"""Plan features for the platform's default messaging providers: `platformEmail` (every
existing plan, so account mail keeps leaving) and `platformSms` (the growth and network
plans), added where a plan does not say yet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The keys already there win (the right operand of || does).
    op.execute(
        sa.text(
            """
            UPDATE billing.plans
            SET features = jsonb_build_object(
                    'platformEmail', true,
                    'platformSms', code IN ('growth', 'network')
                ) || coalesce(features, '{}'::jsonb)
            WHERE NOT (coalesce(features, '{}'::jsonb) ?& array['platformEmail', 'platformSms'])
            """
        )
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE billing.plans SET features = features - 'platformEmail' - 'platformSms' "
            "WHERE features ?| array['platformEmail', 'platformSms']"
        )
    )
