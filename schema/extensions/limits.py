"""Limits on GraphQL documents, enforced before any resolver (so before any SQL) runs.

Tokens are counted while parsing (the parser stops at the limit), depth and aliases are
validation rules (their verdict depends on the document only, so the validation cache keeps
it), and the node cost, which depends on the variables, is checked just before execution.
Every refusal is a GraphQL error naming the limit and the figure, with
``extensions.code = "QUERY_TOO_COMPLEX"``. The contacts a request enrolls are counted before
execution too, and refused with ``LIMIT_EXCEEDED``, the code bulkEnroll gives one list too long.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Lexer,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    TokenKind,
    ValidationRule,
    get_operation_ast,
)
from graphql.language.parser import Parser
from strawberry.extensions import ParserCache, SchemaExtension

from app.domain.enums import ErrorCode
from app.domain.limits import BULK_ENROLL_MAX
from schema.extensions.cost import operation_cost, root_list_lengths
from schema.extensions.error_codes import PARSE_FAILED, coded

CODE = "QUERY_TOO_COMPLEX"
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


def limit_error(
    limit: str,
    message: str,
    maximum: int,
    value: int | None,
    nodes: Node | None = None,
    code: str = CODE,
) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code, "limit": limit, "maximum": maximum}
    if value is not None:
        extensions["value"] = value
    return GraphQLError(message, nodes, extensions=extensions)


class _DocumentWalk:
    """Depth and alias counts per operation, each fragment measured once however often spread."""

    def __init__(self, document: DocumentNode) -> None:
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._depths: dict[tuple[str, bool], int] = {}
        self._aliases: dict[str, int] = {}

    def depth(
        self, selection_set: SelectionSetNode | None, visiting: frozenset[str], meta: bool
    ) -> int:
        """Fields on the longest path down.

        Introspection's ``ofType`` returns one type, never a list, so its nesting (nine deep in
        the standard introspection query) adds nothing; ``meta`` says we are inside
        ``__schema`` or ``__type``.
        """
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                name = selection.name.value
                inner = meta or name in INTROSPECTION_ROOTS
                step = 0 if meta and name == "ofType" else 1
                deepest = max(deepest, step + self.depth(selection.selection_set, visiting, inner))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set, visiting, meta))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment_depth(selection.name.value, visiting, meta))
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> int:
        """Aliased fields, a fragment's counted each time it is spread (each is executed)."""
        count = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                count += int(selection.alias is not None)
                count += self.aliases(selection.selection_set, visiting)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment_aliases(selection.name.value, visiting)
        return count

    def _fragment_depth(self, name: str, visiting: frozenset[str], meta: bool) -> int:
        fragment = self._fragments.get(name)
        if fragment is None or name in visiting:  # unknown or cyclic: validation reports it
            return 0
        if (name, meta) not in self._depths:
            self._depths[name, meta] = self.depth(fragment.selection_set, visiting | {name}, meta)
        return self._depths[name, meta]

    def _fragment_aliases(self, name: str, visiting: frozenset[str]) -> int:
        fragment = self._fragments.get(name)
        if fragment is None or name in visiting:
            return 0
        if name not in self._aliases:
            self._aliases[name] = self.aliases(fragment.selection_set, visiting | {name})
        return self._aliases[name]


def _operations(document: DocumentNode) -> Iterator[OperationDefinitionNode]:
    return (d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def depth_rule(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> Any:
            walk = _DocumentWalk(node)
            for operation in _operations(node):
                depth = walk.depth(operation.selection_set, frozenset(), meta=False)
                if depth > max_depth:
                    self.report_error(
                        limit_error(
                            "depth",
                            f"depth {depth} exceeds {max_depth}: nest fields at most"
                            f" {max_depth} levels deep",
                            max_depth,
                            depth,
                            operation,
                        )
                    )
            return self.BREAK

    return DepthLimit


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasLimit(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> Any:
            walk = _DocumentWalk(node)
            for operation in _operations(node):
                count = walk.aliases(operation.selection_set, frozenset())
                if count > max_aliases:
                    self.report_error(
                        limit_error(
                            "aliases",
                            f"aliases {count} exceeds {max_aliases}: use at most"
                            f" {max_aliases} aliases in one operation",
                            max_aliases,
                            count,
                            operation,
                        )
                    )
            return self.BREAK

    return AliasLimit


def exceeds_token_limit(query: str, max_tokens: int) -> bool:
    """Whether graphql-core's ``max_tokens`` is what stops ``query`` from parsing.

    The parser tells only in its error's message. So a refused document is parsed again by a
    parser holding the same limit (bounded like the first parse) over a lexer of our own, and
    its counts decide: the parser stops when the tokens it consumed (comments included) pass
    the limit, and its lexer stops inside a run of comments that would pass it. Documents
    that parse never pay for this.
    """
    lexer = Lexer(Source(query))
    parser = Parser(lexer.source, max_tokens=max_tokens, lexer=lexer)
    try:
        parser.parse_document()
    except (GraphQLSyntaxError, RecursionError):
        pass
    else:
        return False
    consumed = parser.token_count
    if consumed > max_tokens:
        return True
    comments = 0
    token = lexer.token.next
    while token is not None:
        if token.kind is not TokenKind.COMMENT:
            return False  # the lexer got past the run: something else stopped the parse
        comments += 1
        token = token.next
    return consumed + comments > max_tokens


class TokenLimitedParserCache(ParserCache):
    """Strawberry's parser cache with the parser's token limit, refused with our error."""

    def __init__(self, max_tokens: int, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        try:
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        except GraphQLSyntaxError as error:
            if not exceeds_token_limit(context.query, self.max_tokens):
                raise coded(error, PARSE_FAILED) from None
            raise limit_error(
                "tokens",
                f"token count exceeds {self.max_tokens}: the document has more than"
                f" {self.max_tokens} tokens",
                self.max_tokens,
                None,
            ) from None
        yield


class QueryCostLimit(SchemaExtension):
    """Refuse, before execution, an operation whose node cost exceeds the limit.

    ``schema`` is the graphql-core schema the operations run on, given at construction (the
    request's execution context holds only Strawberry's schema)."""

    def __init__(self, max_cost: int, schema: GraphQLSchema) -> None:
        self.max_cost = max_cost
        self.schema = schema

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.result is None:
            variables: Mapping[str, Any] | None = context.variables
            cost = operation_cost(
                self.schema,
                context.graphql_document,
                context.operation_name,
                variables,
            )
            if cost > self.max_cost:
                context.result = ExecutionResult(
                    data=None,
                    errors=[
                        limit_error(
                            "cost",
                            f"cost {cost} exceeds {self.max_cost}: each connection counts its"
                            " 'first' (its default when omitted) and each totalCount a page,"
                            " times the bounds of the lists around them; ask for smaller pages",
                            self.max_cost,
                            cost,
                        )
                    ],
                )
        yield


class RequestContactLimit(SchemaExtension):
    """Refuse, before execution, an operation whose bulkEnroll fields together carry more
    contacts than one bulkEnroll may: the limit bounds a request's work, and ten aliases of one
    field would otherwise do ten times as much. A single field over the limit is left to
    bulkEnroll, whose payload error names its ``contacts`` argument."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None and operation.operation is OperationType.MUTATION:
                lengths = root_list_lengths(
                    document, operation, "bulkEnroll", "contacts", context.variables
                )
                total = sum(lengths.values())
                if len(lengths) > 1 and total > BULK_ENROLL_MAX:
                    context.result = ExecutionResult(
                        data=None,
                        errors=[
                            limit_error(
                                "contacts",
                                f"contacts {total} exceed {BULK_ENROLL_MAX}: the bulkEnroll"
                                f" fields of one request enroll at most {BULK_ENROLL_MAX}"
                                " contacts together; send the rest in another request",
                                BULK_ENROLL_MAX,
                                total,
                                operation,
                                code=ErrorCode.LIMIT_EXCEEDED.value,
                            )
                        ],
                    )
        yield
