"""Unexpected exceptions reach clients as "Internal server error" plus the request id.

The full exception goes to the log under the same request id, so an operator can find it from
what the client reports; the response carries no message, SQL or stack of the original.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.observability.request_context import current_request_id

MESSAGE = "Internal server error"
CODE = "INTERNAL_SERVER_ERROR"

logger = logging.getLogger("campaign_api")


def is_unexpected(error: GraphQLError) -> bool:
    """What the service did not raise on purpose (a GraphQLError it built) is unexpected."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = current_request_id()
        original = error.original_error
        assert original is not None  # is_unexpected chose it
        logger.error(
            "unexpected error in GraphQL field %s (request_id=%s)",
            ".".join(str(p) for p in error.path or ()),
            request_id,
            exc_info=(type(original), original, original.__traceback__),
        )
        return GraphQLError(
            message=MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": CODE, "requestId": request_id},
        )
