"""Tag schemas (docs/api.md, "Tags"): a tag name, a task's tags, the tag filter and the tag list."""

from __future__ import annotations

import unicodedata

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..data.models import TAG_MAX_LENGTH, TAGS_PER_TASK_MAX, folded
from .fields import TrimmedText

# Control characters, and the line and paragraph separators that break a line as one does.
REFUSED_CATEGORIES = {"Cc", "Zl", "Zp"}


def reject_unaddressable_names(name: str) -> None:
    if "," in name:
        raise ValidationError("Must not contain commas (a filter separates names with them).")
    if any(unicodedata.category(character) in REFUSED_CATEGORIES for character in name):
        raise ValidationError("Must not contain control characters or line breaks.")
    if name and name.strip(".") == "":
        # Browsers resolve "." and ".." path segments (even %2E%2E) before sending:
        # such a tag could never be renamed or deleted at /tags/{name}.
        raise ValidationError("Must not be made of dots only.")


class TagName(TrimmedText):
    """One tag: trimmed, 1-40 characters, no control characters, line breaks or commas,
    not dots alone."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators += [
            validate.Length(1, TAG_MAX_LENGTH),
            reject_unaddressable_names,
        ]


class TagList(fields.List):
    """A task's tags: names equal but for case are merged (first spelling kept), order kept."""

    def __init__(self, **kwargs):
        limit = validate.Length(
            max=TAGS_PER_TASK_MAX,
            error="At most {max} tags per task (names equal but for case count once).",
        )
        super().__init__(TagName(), validate=limit, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        tags, seen, problems = [], set(), []
        for position, item in enumerate(value, 1):
            try:
                name = self.inner.deserialize(item)
            except ValidationError as error:
                problems += [f"Tag {position}: {message}" for message in error.messages]
                continue
            if folded(name) not in seen:
                seen.add(folded(name))
                tags.append(name)
        if problems:
            raise ValidationError(problems)
        return tags


class TagFilter(fields.String):
    """``tag=work,home``: the folded names a task must all carry, sorted; empty: no filter.

    Each name is checked as a ``TagName`` (storable text, length, no control
    characters); what this field returns is a tuple, not text.
    """

    def _deserialize(self, value, attr, data, **kwargs) -> tuple[str, ...]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text:
            return ()
        names = {folded(TagName().deserialize(name)) for name in text.split(",")}
        if len(names) > TAGS_PER_TASK_MAX:
            raise ValidationError(f"At most {TAGS_PER_TASK_MAX} names (no task has more tags).")
        return tuple(sorted(names))

    def _serialize(self, value, attr, obj, **kwargs) -> str:
        return ",".join(value or ())


class TagSchema(Schema):
    """A tag and how many of the user's tasks carry it."""

    name = fields.String(metadata={"example": "work"})
    count = fields.Integer(metadata={"example": 3})


class TagRenameSchema(Schema):
    """The body of ``PATCH /api/{user_id}/tags/{name}``."""

    name = TagName(required=True, metadata={"description": "The new name."})

    class Meta:
        unknown = RAISE
