"""Marketers' segments: named boolean expressions over customer_360's columns (conf/segments.yaml).

A definition is checked twice before any mart is built, so a wrong one never costs a run:

1. When the configuration is loaded (every CLI command, every Airflow task, and the DAG file's
   parse), without Spark: the expression is parsed as Spark SQL (sqlglot) and its parse tree must
   use only what a segment needs: customer_360's columns, literals, comparisons, boolean and
   arithmetic operators, CASE/IF and a short list of pure functions. Anything else is refused,
   which is what keeps injection out: a subquery could read another tenant's table or any file
   (``delta.`/path```), ``;`` could start a second statement, and functions such as ``reflect``
   call arbitrary Java. The result must be boolean. Only this checked tree, written back as Spark
   SQL (`Segment.spark_sql`), is ever handed to Spark; comments are refused rather than dropped.
2. When a build starts, with Spark's own analyzer on an empty DataFrame of customer_360's contract
   schema (`check_with_spark`): the expression must resolve and be boolean there too.

Each error names the segment and the problem.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CHANNELS = ("email", "sms")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_KEYS = {"expression", "description", "owner", "channel"}
_REQUIRED = ("expression", "description", "owner")


class SegmentError(ValueError):
    """A segment definition is wrong; the message names the segment and the problem."""


@dataclass(frozen=True)
class Segment:
    name: str
    expression: str  # as the marketer wrote it
    description: str
    owner: str
    channel: str | None  # `email`: only customers whose latest email consent granted it
    spark_sql: str  # the checked parse tree, written back as Spark SQL: the only text Spark sees


def parse_definitions(raw: Any, columns: Mapping[str, str]) -> tuple[Segment, ...]:
    """Segments from the content of conf/segments.yaml (a mapping with one key, `segments`),
    checked against `columns` (customer_360's contract: name -> Spark SQL type)."""
    if not isinstance(raw, dict) or set(raw) != {"segments"}:
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise SegmentError(f"the file must hold one key, `segments`, mapping names to definitions; found {found}")
    entries = raw["segments"] or {}
    if not isinstance(entries, dict):
        raise SegmentError(f"`segments` must map segment names to definitions, got {entries!r}")
    return tuple(_segment(name, entry, columns) for name, entry in entries.items())


def _segment(name: Any, entry: Any, columns: Mapping[str, str]) -> Segment:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SegmentError(
            f"segment {name!r}: a name is lower-case letters, digits and `_`, starting with a letter (at most 63)"
        )
    if not isinstance(entry, dict):
        raise SegmentError(f"segment {name!r}: must be a mapping with {', '.join(_REQUIRED)} (and optional channel)")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise SegmentError(f"segment {name!r}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise SegmentError(f"segment {name!r}: `{key}` is required and must be a non-empty text")
    channel = entry.get("channel")
    if channel is not None and channel not in CHANNELS:
        raise SegmentError(f"segment {name!r}: channel {channel!r} is unknown; channels: {', '.join(CHANNELS)}")
    expression = entry["expression"].strip()
    try:
        spark_sql = checked_sql(expression, columns)
    except SegmentError as error:
        raise SegmentError(f"segment {name!r}: {error} in {expression!r}") from None
    return Segment(name, expression, entry["description"].strip(), entry["owner"].strip(), channel, spark_sql)


# --- the parse-tree check (no Spark) -------------------------------------------------------------

def _allowed() -> tuple[dict[type, str], dict[type, str]]:
    """Node types a segment may use: (operators and plain nodes, functions by their SQL name)."""
    from sqlglot import exp

    nodes = {
        exp.Column: "column", exp.Identifier: "name", exp.Literal: "literal", exp.Boolean: "TRUE/FALSE",
        exp.Null: "NULL", exp.Paren: "parentheses", exp.And: "AND", exp.Or: "OR", exp.Not: "NOT",
        exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=",
        exp.NullSafeEQ: "<=>", exp.NullSafeNEQ: "IS DISTINCT FROM", exp.Is: "IS", exp.In: "IN",
        exp.Between: "BETWEEN", exp.Like: "LIKE", exp.ILike: "ILIKE", exp.Add: "+", exp.Sub: "-",
        exp.Mul: "*", exp.Div: "/", exp.Mod: "%", exp.Neg: "-", exp.Case: "CASE", exp.If: "WHEN/IF",
        exp.Cast: "CAST", exp.TryCast: "CAST", exp.DataType: "type", exp.DataTypeParam: "type",
    }
    functions = {
        exp.Abs: "abs", exp.Coalesce: "coalesce", exp.Greatest: "greatest", exp.Least: "least",
        exp.Lower: "lower", exp.Upper: "upper", exp.Length: "length", exp.Floor: "floor", exp.Ceil: "ceil",
        exp.Round: "round", exp.DateDiff: "datediff", exp.TsOrDsToDate: "datediff",
    }
    return nodes, functions


_CAST_TYPES = {"BOOLEAN", "INT", "BIGINT", "DOUBLE", "DECIMAL", "TEXT", "VARCHAR", "DATE", "TIMESTAMP"}
_PREDICATES = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ", "Is", "In", "Between", "Like", "ILike")


def checked_sql(expression: str, columns: Mapping[str, str]) -> str:
    """The expression's parse tree, checked, written back as Spark SQL; SegmentError says why not."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if not expression.strip():
        raise SegmentError("the expression is empty")
    try:
        statements = [s for s in sqlglot.parse(expression, dialect="spark") if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        # sqlglot names its node classes ("missing for <class 'sqlglot.expressions.core.GT'>"): keep the name.
        problem = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", str(first.get("description") or error))
        raise SegmentError(f"syntax error{where}: {problem}") from None
    except TokenError as error:
        raise SegmentError(f"syntax error: {error}") from None
    if len(statements) != 1:
        raise SegmentError("`;` is not allowed: a segment is one expression, not statements")
    tree = statements[0]
    nodes, functions = _allowed()
    lookup = {name.lower(): name for name in columns}
    for node in tree.walk():
        if node.comments:
            raise SegmentError("comments are not allowed in an expression (say it in `description`)")
        kind = type(node)
        if kind is exp.Column:
            _check_column(node, lookup)
        elif kind in (exp.Cast, exp.TryCast):
            target = node.to.this.name if isinstance(node.to, exp.DataType) else str(node.to)
            if target not in _CAST_TYPES:
                raise SegmentError(f"CAST to {node.to.sql('spark')} is not allowed")
        elif node is tree and kind not in nodes and kind not in functions and not isinstance(node, exp.Func):
            raise SegmentError(f"{node.sql('spark')!r} is a statement; a segment is one boolean expression")
        elif kind not in nodes and kind not in functions:
            raise SegmentError(_refusal(node, functions))
    kind = _kind(tree, {lookup[name]: columns[lookup[name]] for name in lookup})
    if kind != "boolean":
        raise SegmentError(f"the expression is not boolean (it gives a {kind}); compare it, e.g. `... > 5`")
    return tree.sql(dialect="spark")


def _check_column(node: Any, lookup: Mapping[str, str]) -> None:
    if node.table or node.args.get("db") or node.args.get("catalog"):
        raise SegmentError(f"column {node.sql('spark')} names a table; write customer_360's column alone")
    if node.name.lower() not in lookup:
        near = difflib.get_close_matches(node.name.lower(), list(lookup), n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise SegmentError(f"unknown column {node.name!r} (customer_360 has {', '.join(lookup.values())}){hint}")


def _refusal(node: Any, functions: Mapping[type, str]) -> str:
    from sqlglot import exp

    allowed = ", ".join(sorted(set(functions.values())))
    if isinstance(node, (exp.Subquery, exp.Select, exp.Exists, exp.Table, exp.Query)):
        return "subqueries are not allowed: a segment reads customer_360's columns only"
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return f"parameter {node.sql('spark')} is not allowed"
    if isinstance(node, exp.Window):
        return "window functions (OVER) are not allowed"
    if isinstance(node, exp.AggFunc):
        return f"aggregate {node.sql('spark')} is not allowed: a segment looks at one customer's row"
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.lower()}() is not allowed; functions: {allowed}"
    if isinstance(node, exp.Func):
        name = node.sql_name().lower()
        return f"function {name}() is not allowed; functions: {allowed}"
    return f"{node.key.upper()} ({node.sql('spark')}) is not allowed in a segment"


def _kind(node: Any, columns: Mapping[str, str]) -> str:
    """The coarse type of a checked node: boolean, number, text, date, timestamp, null."""
    from sqlglot import exp

    name = type(node).__name__
    if name in _PREDICATES:
        return "boolean"
    if isinstance(node, (exp.And, exp.Or, exp.Not)):
        for operand in (node.this, node.args.get("expression")):
            if operand is not None and _kind(operand, columns) not in ("boolean", "null"):
                raise SegmentError(f"{name.upper()} needs boolean operands, {operand.sql('spark')!r} is not")
        return "boolean"
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, exp.Paren):
        return _kind(node.this, columns)
    if isinstance(node, exp.Column):
        spark_type = columns[next(c for c in columns if c.lower() == node.name.lower())]
        return _kind_of_type(spark_type)
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return _kind_of_type(node.to.this.name)
    if isinstance(node, (exp.Case, exp.If, exp.Coalesce, exp.Greatest, exp.Least)):
        return _common_kind(node, columns)
    if isinstance(node, (exp.Lower, exp.Upper)):
        return "text"
    return "number"  # arithmetic, abs, length, floor, ceil, round, datediff


def _common_kind(node: Any, columns: Mapping[str, str]) -> str:
    """CASE/IF give their branches' type; COALESCE, GREATEST and LEAST their arguments'."""
    from sqlglot import exp

    if isinstance(node, exp.Case):
        branches = [when.args.get("true") for when in node.args.get("ifs") or []] + [node.args.get("default")]
    elif isinstance(node, exp.If):
        branches = [node.args.get("true"), node.args.get("false")]
    else:
        branches = [node.this, *(node.expressions or [])]
    kinds = {_kind(branch, columns) for branch in branches if branch is not None} - {"null"}
    return kinds.pop() if len(kinds) == 1 else ("null" if not kinds else "mixed value")


def _kind_of_type(spark_type: str) -> str:
    spark_type = spark_type.lower()
    if spark_type == "boolean":
        return "boolean"
    if spark_type in ("string", "text", "varchar"):
        return "text"
    if spark_type in ("date", "timestamp"):
        return spark_type
    return "number"


# --- Spark's analyzer ----------------------------------------------------------------------------

def check_with_spark(spark: SparkSession, segments: Iterable[Segment], columns: Mapping[str, str] | None = None) -> None:
    """Each segment's checked SQL resolves, and is boolean, on an empty frame of customer_360's
    contract schema: Spark's own parser and analyzer, before any mart is built. Nothing is read;
    it costs milliseconds per segment. Raises ConfigError naming the segment and Spark's reason."""
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    from jobs.config import ConfigError

    columns = columns or contract_columns()
    empty = spark.createDataFrame([], ", ".join(f"`{name}` {sql_type}" for name, sql_type in columns.items()))
    for segment in segments:
        try:
            result_type = empty.select(F.expr(segment.spark_sql).alias("is_member")).schema["is_member"].dataType
        except (AnalysisException, ParseException) as error:
            first_line = str(error).strip().splitlines()[0]
            raise ConfigError(f"segment {segment.name!r}: Spark refuses {segment.expression!r}: {first_line}") from None
        if not isinstance(result_type, BooleanType):
            raise ConfigError(
                f"segment {segment.name!r}: {segment.expression!r} is {result_type.simpleString()} in Spark, not boolean"
            )


def contract_columns() -> dict[str, str]:
    """customer_360's contract columns and types, which segments are written over."""
    from jobs.marts.customer_360 import CONTRACT

    return dict(CONTRACT.columns)
