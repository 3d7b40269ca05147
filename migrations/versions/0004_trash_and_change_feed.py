"""trash and change feed

Adds users.change_number (each user's change counter, 0), tasks.deleted_at
(null: no task is in the trash) and tasks.change_number (0: every existing
task predates every change-feed token), the tombstones table (tasks erased
from the trash, for the change feed), an index for the feed and two for the
trash (one user's, latest first; everyone's, for purge-trash). The six list
indexes are rebuilt as partial indexes of the tasks not in the trash
(``WHERE deleted_at IS NULL``): lists never show trashed tasks, so they need
not be indexed for them.

Going down drops the tombstones and the new columns; tasks in the trash then
come back as ordinary tasks, their tags indexed again (nothing is deleted by
a downgrade).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 05:30:00.000000

"""

import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIST_INDEXES = {
    f"ix_tasks_user_id_{key}_id": ["user_id", key, "id"]
    for key in ("created_at", "updated_at", "title", "due_at", "priority", "remind_at")
}
LIVE = "deleted_at IS NULL"
TRASHED = "deleted_at IS NOT NULL"


def partial(where: str) -> dict:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def alter_tasks():
    # Should SQLite rebuild the table (dropping columns does), ids stay never reused.
    return op.batch_alter_table("tasks", table_kwargs={"sqlite_autoincrement": True})


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("change_number", sa.BigInteger(), server_default="0", nullable=False)
        )
    with alter_tasks() as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("change_number", sa.BigInteger(), server_default="0", nullable=False)
        )
    for name, columns in LIST_INDEXES.items():
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns, unique=False, **partial(LIVE))
    op.create_index(
        "ix_tasks_user_id_deleted_at_id",
        "tasks",
        ["user_id", "deleted_at", "id"],
        unique=False,
        **partial(TRASHED),
    )
    op.create_index("ix_tasks_deleted_at", "tasks", ["deleted_at"], **partial(TRASHED))
    op.create_index(
        "ix_tasks_user_id_change_number_id", "tasks", ["user_id", "change_number", "id"]
    )
    op.create_table(
        "tombstones",
        sa.Column("task_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("change_number", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tombstones_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_tombstones")),
    )
    op.create_index(
        "ix_tombstones_user_id_change_number_task_id",
        "tombstones",
        ["user_id", "change_number", "task_id"],
    )
    op.create_index("ix_tombstones_erased_at", "tombstones", ["erased_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tombstones SET (parallel_workers = 0)")


def downgrade():
    index_tags_of_trashed_tasks()
    op.drop_index("ix_tombstones_erased_at", table_name="tombstones")
    op.drop_index("ix_tombstones_user_id_change_number_task_id", table_name="tombstones")
    op.drop_table("tombstones")
    op.drop_index("ix_tasks_user_id_change_number_id", table_name="tasks")
    op.drop_index("ix_tasks_deleted_at", table_name="tasks")
    op.drop_index("ix_tasks_user_id_deleted_at_id", table_name="tasks")
    for name, columns in LIST_INDEXES.items():
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns, unique=False)
    with alter_tasks() as batch_op:
        batch_op.drop_column("change_number")
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("change_number")


def index_tags_of_trashed_tasks():
    """Trashed tasks have no task_tags rows; as ordinary tasks again they need them."""
    bind = op.get_bind()
    trashed = bind.execute(
        sa.text("SELECT id, user_id, tags FROM tasks WHERE deleted_at IS NOT NULL AND tags <> '[]'")
    ).all()
    rows = []
    for task_id, user_id, tags in trashed:
        names = {}
        for name in json.loads(tags):
            names.setdefault(name.casefold(), name)  # as taskapi.data.models.folded
        rows += [
            {"task_id": task_id, "user_id": user_id, "name": name, "name_folded": folded}
            for folded, name in names.items()
        ]
    if rows:
        bind.execute(
            sa.text(
                "INSERT INTO task_tags (task_id, user_id, name, name_folded) "
                "VALUES (:task_id, :user_id, :name, :name_folded)"
            ),
            rows,
        )
