"""Account schemas: registration, login and the tokens they return."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..data.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from .fields import Text, TrimmedText, UTCDateTime

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


class Email(TrimmedText):
    """An email address, compared and stored lower-cased."""

    def __init__(self, **kwargs):
        super().__init__(
            validate=[validate.Length(max=EMAIL_MAX_LENGTH), validate.Email()], **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return super()._deserialize(value, attr, data, **kwargs).lower()


class RegisterSchema(Schema):
    email = Email(required=True)
    name = TrimmedText(required=True, validate=validate.Length(1, NAME_MAX_LENGTH))
    password = Text(
        required=True,
        load_only=True,
        validate=validate.Length(PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH),
    )

    class Meta:
        unknown = RAISE


class LoginSchema(Schema):
    email = Email(required=True)
    # No minimum: a too-short password is just a wrong one (401), like any other.
    password = Text(
        required=True, load_only=True, validate=validate.Length(max=PASSWORD_MAX_LENGTH)
    )

    class Meta:
        unknown = RAISE


class UserSchema(Schema):
    id = fields.String()
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    created_at = UTCDateTime()


class TokenSchema(Schema):
    user = fields.Nested(UserSchema)
    access_token = fields.String()
    token_type = fields.String(dump_default="Bearer")
    expires_in = fields.Integer()


token_schema = TokenSchema()
