"""merging duplicate children of the target-group registry, reversibly

A child merged into another keeps its row, marked `merged_into_id`; `child_merge` records each merge
(who, when, why, the ids of the rows it moved and the fields it filled) so that it can be undone;
`distinct_children` holds the pairs of likely duplicates someone found to be different children;
two indexes of `child` serve the review of likely duplicates: the children without a middle name
(partial), and birth date + region (to join them to the children with one).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_child_merged_into_id_child", "child", ["merged_into_id"], ["id"])
        batch_op.create_index(
            "ix_child_no_middle_name",
            ["region_id"],
            unique=False,
            sqlite_where=sa.text("middle_name IS NULL"),
            postgresql_where=sa.text("middle_name IS NULL"),
        )
        batch_op.create_index("ix_child_birth_region", ["birth_date", "region_id"], unique=False)
    op.create_table(
        "child_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("keep_child_id", sa.Integer(), nullable=False),
        sa.Column("merge_child_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("merged_by_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("moved", JSON, nullable=False),
        sa.Column("kept_before", JSON, nullable=False),
        sa.Column("filled", JSON, nullable=False),
        sa.Column("case_ids", JSON, nullable=False),
        sa.Column("undone_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undo_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["keep_child_id"], ["child.id"]),
        sa.ForeignKeyConstraint(["merge_child_id"], ["child.id"]),
        sa.ForeignKeyConstraint(["merged_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"]),
        sa.ForeignKeyConstraint(["undone_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("child_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_child_merge_keep_child_id"), ["keep_child_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_child_merge_merge_child_id"), ["merge_child_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_child_merge_region_id"), ["region_id"], unique=False)
    op.create_table(
        "distinct_children",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("child_low_id", sa.Integer(), nullable=False),
        sa.Column("child_high_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("marked_by_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("marked_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_high_id"], ["child.id"]),
        sa.ForeignKeyConstraint(["child_low_id"], ["child.id"]),
        sa.ForeignKeyConstraint(["marked_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("child_low_id", "child_high_id", name="uq_distinct_children_pair"),
    )
    with op.batch_alter_table("distinct_children", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_distinct_children_child_high_id"), ["child_high_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_distinct_children_region_id"), ["region_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("distinct_children", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_distinct_children_region_id"))
        batch_op.drop_index(batch_op.f("ix_distinct_children_child_high_id"))
    op.drop_table("distinct_children")
    with op.batch_alter_table("child_merge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_child_merge_region_id"))
        batch_op.drop_index(batch_op.f("ix_child_merge_merge_child_id"))
        batch_op.drop_index(batch_op.f("ix_child_merge_keep_child_id"))
    op.drop_table("child_merge")
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.drop_index("ix_child_birth_region")
        batch_op.drop_index("ix_child_no_middle_name")
        batch_op.drop_constraint("fk_child_merged_into_id_child", type_="foreignkey")
        batch_op.drop_column("merged_into_id")
