"""The base of every query-string schema: each parameter once, unknown ones ignored."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, pre_load


class QuerySchema(Schema):
    """Loads ``request.args``; a known parameter given twice is a 400 naming it."""

    class Meta:
        # Other parameters (a cache-busting "_=123", say) are ignored, as most APIs do.
        unknown = EXCLUDE

    @pre_load
    def single_values(self, args, **kwargs):
        """Take a MultiDict of query arguments; each known one may appear once."""
        repeated = {
            name: ["Give this parameter once."]
            for name in self.fields
            if len(args.getlist(name)) > 1
        }
        if repeated:
            raise ValidationError(repeated)
        return args.to_dict()
