"""The sandbox message templates render in: Jinja's own sandbox, with bounds on what a
template may make and for how long, so that no wording a clinic saves can exhaust the memory
or the time of the web app or of a worker.

- No loader: `{% include %}`, `{% import %}` and `{% extends %}` are refused with their line.
- Every operator is intercepted (`call_binop`): `'a' * 10**8`, `2 ** 10**9` or a `%` format
  with a huge width are refused before anything is made.
- `range` gives at most MAX_RANGE numbers; only a known list of callables may be called
  (`is_safe_callable`), and every call, filter and operator result is measured.
- No value made along the way may weigh more than MAX_VALUE characters or items (shared
  references counted each time, as printing would), and all the text a render writes
  (blocks, macros and `{% set %}` captures included) stays under MAX_WRITTEN.
- The output is produced with `generate()` and stops as soon as it passes MAX_OUTPUT.
- A render stops after MAX_SECONDS: the clock is read at every loop step, call, filter,
  operator and piece of output.

Failures are `TemplateFailed`, with the template's line where Jinja knows it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import string
import time
from collections import abc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer

MAX_OUTPUT = 64 * 1024  # characters of one rendered subject or body
MAX_WRITTEN = 4 * MAX_OUTPUT  # characters written in all, into blocks and macros too
MAX_VALUE = MAX_OUTPUT  # characters or items of any value made along the way
MAX_RANGE = 10_000
MAX_INT_BITS = 1024
MAX_SECONDS = 1.0


class TemplateFailed(Exception):
    """Why a template cannot be used; `problem` is short (`does not parse`), `reason` says
    what exactly, `line` is the template's line when known."""

    def __init__(self, problem: str, reason: str, line: int | None = None) -> None:
        super().__init__(problem, reason, line)
        self.problem = problem
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.problem}{where}: {self.reason}"


class TooLarge(SecurityError):
    """A value, the output or a range past its bound."""


class TooSlow(SecurityError):
    """The render ran past its time."""


class _Budget:
    """The bounds of one render."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.written = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TooSlow(f"the render took longer than {self.seconds:g} s")

    def write(self, size: int) -> None:
        self.written += size
        if self.written > MAX_WRITTEN:
            raise TooLarge(
                f"the template writes more than {MAX_WRITTEN} characters in all "
                "(loops, blocks and macros included)"
            )


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


def _tick() -> None:
    budget = _budget.get(None)
    if budget is not None:
        budget.tick()


def _too_large(what: str) -> TooLarge:
    return TooLarge(f"{what} would be larger than {MAX_VALUE} characters or items")


def weigh(value: object, limit: int = MAX_VALUE) -> int:
    """The size of `value` as printing would spell it out (every character and item,
    shared references once per reference), or TooLarge as soon as it passes `limit`; the
    walk stops there, so it costs at most `limit` steps."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += max(len(item), 1)
        else:
            total += 1
        if isinstance(item, bool | float | str | bytes) or item is None:
            pass
        elif isinstance(item, int):
            if item.bit_length() > MAX_INT_BITS:
                raise TooLarge(f"a number would have more than {MAX_INT_BITS} bits")
        elif isinstance(item, range | jinja2.Undefined | LoopContext):
            pass
        elif isinstance(item, Namespace):
            pending.extend(object.__getattribute__(item, "__dict__").values())
        elif isinstance(item, abc.Mapping):
            if total + 2 * len(item) <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
            else:
                total += 2 * len(item)
        elif isinstance(item, abc.Collection):
            if total + len(item) <= limit:
                pending.extend(item)
            else:
                total += len(item)
        if total > limit:
            raise _too_large("a value")
    return total


def _materialized(value: object) -> object:
    """An iterator (a filter's generator) made a list, measured item by item."""
    if not isinstance(value, abc.Iterator):
        return value
    items: list[object] = []
    total = 0
    for item in value:
        _tick()
        total += weigh(item)
        if total > MAX_VALUE:
            raise _too_large("a sequence")
        items.append(item)
    return items


def _checked(value: object) -> object:
    weigh(value)
    return value


# Bounds on what an operator may make, checked before it runs.


def _sized(value: object) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_repeat(sequence: object, times: int) -> None:
    if times > 0 and weigh(sequence) * times > MAX_VALUE:
        raise _too_large(f"repeating a value {times} times")


def _check_power(base: object, exponent: object) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return
    if abs(base) > 1 and math.log2(abs(base)) * exponent > MAX_INT_BITS:
        raise TooLarge(f"a number would have more than {MAX_INT_BITS} bits")


_PERCENT_SPEC = re.compile(r"%%|%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_width(number: str | None, what: str) -> None:
    if number is None or number == "":
        return
    if number == "*" or len(number) > 6 or int(number) > MAX_VALUE:
        raise TooLarge(f"a {what} width or precision above {MAX_VALUE} is not allowed")


def check_percent_format(text: object) -> None:
    """`'%100000000s' % x` is refused before Python builds it."""
    if isinstance(text, str):
        for spec in _PERCENT_SPEC.finditer(text):
            _check_width(spec.group(1), "%-format")
            _check_width(spec.group(2), "%-format")


def check_format_fields(text: str) -> None:
    """`'{:>100000000}'.format(x)` is refused before Python builds it."""
    for _, field, spec, _ in string.Formatter().parse(text):
        if field is None or not spec:
            continue
        if "{" in spec:
            raise SecurityError("a format width may not come from another field")
        for number in re.findall(r"\d+", spec):
            _check_width(number, "format")


# Filters: Jinja's, less those that only serve HTML or can multiply their input without a
# bound worth keeping; those with an amplifying argument get a check before they run.

_DROPPED = {"batch", "slice", "urlize", "xmlattr"}


def _check_center(value: object, width: int = 80) -> None:
    if isinstance(width, int) and width > MAX_VALUE:
        raise _too_large(f"centering in {width} characters")


def _check_indent(
    value: object, width: int | str = 4, first: bool = False, blank: bool = False
) -> None:
    text = str(value)
    step = len(width) if isinstance(width, str) else int(width)
    if len(text) + (text.count("\n") + 1) * max(step, 0) > MAX_VALUE:
        raise _too_large("indenting")


def _check_join(value: object, d: str = "", attribute: object = None) -> None:
    count = len(value) if isinstance(value, abc.Sized) else 0
    if len(str(d)) * count > MAX_VALUE:
        raise _too_large("joining")


def _check_replace(value: object, old: object, new: object, count: int | None = None) -> None:
    text, old_text, new_text = str(value), str(old), str(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    if len(text) + found * max(len(new_text) - len(old_text), 0) > MAX_VALUE:
        raise _too_large("replacing")


def _check_wordwrap(
    value: object,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> None:
    text = str(value)
    breaks = sum(1 for c in text if c.isspace()) + len(text) // max(int(width), 1) + 1
    if len(text) + breaks * len(wrapstring or "\n") > MAX_VALUE:
        raise _too_large("wrapping")


def _check_format(value: object, *args: object, **kwargs: object) -> None:
    check_percent_format(str(value))


def _check_sum(iterable: object, attribute: object = None, start: object = 0) -> None:
    # With a number to start from, only numbers add up: lists and strings are refused at
    # once, instead of being concatenated over and over.
    if not isinstance(start, int | float):
        raise SecurityError("sum adds numbers only")


def _check_tojson(value: object, indent: int | str | None = None) -> None:
    step = len(indent) if isinstance(indent, str) else indent
    if step is not None and step > 8:
        raise SecurityError("tojson indents by 8 at most")


_PRECHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "join": _check_join,
    "replace": _check_replace,
    "wordwrap": _check_wordwrap,
    "format": _check_format,
    "sum": _check_sum,
    "tojson": _check_tojson,
}


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    precheck = _PRECHECKS.get(name)
    passes_first = hasattr(original, "jinja_pass_arg")

    @functools.wraps(original)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        head, rest = (args[:1], args[1:]) if passes_first else ((), args)
        rest = tuple(_materialized(arg) for arg in rest)
        kwargs = {key: _materialized(value) for key, value in kwargs.items()}
        for value in (*rest, *kwargs.values()):
            weigh(value)
        if precheck is not None:
            precheck(*rest, **kwargs)
        return _checked(original(*head, *rest, **kwargs))

    return bounded


# What the rewritten template calls: around each loop's iterable, each piece of output,
# each `~` and each list, tuple or dict written in the template.


@pass_context
def _loop(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


@pass_context
def _emit(context: Context, value: object) -> object:
    budget = _budget.get()
    budget.tick()
    weigh(value)
    budget.write(len(str(value)))
    return value


@pass_context
def _value(context: Context, value: object) -> object:
    _tick()
    return _checked(value)


@pass_eval_context
def _concat(eval_ctx: nodes.EvalContext, parts: list[object]) -> str:
    _tick()
    weigh(parts)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


_INTERNAL = {"_loop": _loop, "_emit": _emit, "_value": _value, "_concat": _concat}


def _internal(name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Rewrite(NodeTransformer):
    """Refuses what reaches for other templates; routes loops, output, `~` and literals
    through the bounded helpers above."""

    def visit_Extends(self, node: nodes.Extends) -> nodes.Node:
        raise _elsewhere("extends", node.lineno)

    def visit_Include(self, node: nodes.Include) -> nodes.Node:
        raise _elsewhere("include", node.lineno)

    def visit_Import(self, node: nodes.Import) -> nodes.Node:
        raise _elsewhere("import", node.lineno)

    def visit_FromImport(self, node: nodes.FromImport) -> nodes.Node:
        raise _elsewhere("from … import", node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal("_loop", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_internal("_emit", child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal("_concat", nodes.List(node.nodes, lineno=node.lineno))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _internal("_value", node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _internal("_value", node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return node if node.ctx == "store" else _internal("_value", node)


def _elsewhere(tag: str, line: int) -> TemplateFailed:
    return TemplateFailed(
        "is not allowed",
        f"a message template cannot use {{% {tag} %}}: it stands on its own",
        line,
    )


# Callables a template may call; anything else is refused.

_STR_METHODS = frozenset(
    {
        *("capitalize", "casefold", "lower", "swapcase", "title", "upper"),
        *("strip", "lstrip", "rstrip", "removeprefix", "removesuffix"),
        *("split", "rsplit", "splitlines", "partition", "rpartition"),
        *("count", "find", "rfind", "index", "rindex", "startswith", "endswith"),
        *("isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric"),
        *("isspace", "istitle", "isupper"),
    }
)
_MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_LOOP_METHODS = frozenset({"cycle", "changed"})
# What the compiled template passes along to a call of its own (the enclosing loop's and
# block's variables): not the template's values.
_COMPILER_KWARGS = frozenset({"_loop_vars", "_block_vars", "caller"})


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TooLarge(f"range gives {MAX_RANGE} numbers at most, not {len(numbers)}")
    return numbers


class BoundedNamespace(Namespace):
    """`namespace()`, whose attributes are measured when set."""

    def __setitem__(self, name: str, value: Any) -> None:
        _tick()
        super().__setitem__(name, _checked(value))


class _BoundedFormat:
    """`str.format` and `format_map` in the sandbox, with widths bounded."""

    def __init__(self, text: str, format_: Callable[..., str]) -> None:
        self.text = text
        self.format = format_

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        check_format_fields(self.text)
        return self.format(*args, **kwargs)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with no loader, only bounded operators, calls and filters."""

    intercepted_binops = frozenset(ImmutableSandboxedEnvironment.default_binop_table)

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True)
        self.globals = {"range": bounded_range, "dict": dict, "namespace": BoundedNamespace}
        self.filters = {
            name: _bounded_filter(name, original)
            for name, original in DEFAULT_FILTERS.items()
            if name not in _DROPPED
        }
        self.filters.update(_INTERNAL)
        self._safe_globals = (bounded_range, dict, BoundedNamespace)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            if _sized(left) and isinstance(right, int):
                _check_repeat(left, right)
            elif _sized(right) and isinstance(left, int):
                _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%":
            check_percent_format(left)
        return _checked(super().call_binop(context, operator, left, right))

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, Macro | LoopContext | jinja2.Undefined | _BoundedFormat):
            return True
        if any(obj is allowed for allowed in self._safe_globals):
            return True
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, str):
            return name in _STR_METHODS
        if isinstance(owner, dict):
            return name in _MAPPING_METHODS
        if isinstance(owner, list | tuple):
            return name in _SEQUENCE_METHODS
        if isinstance(owner, LoopContext):
            return name in _LOOP_METHODS
        return False

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if not __self.is_safe_callable(__obj):
            name = getattr(__obj, "__name__", type(__obj).__name__)
            raise SecurityError(f"{name} cannot be called in a message template")
        args = tuple(_materialized(arg) for arg in args)
        kwargs = {
            key: value if key in _COMPILER_KWARGS else _materialized(value)
            for key, value in kwargs.items()
        }
        for key, value in (*enumerate(args), *kwargs.items()):
            if key not in _COMPILER_KWARGS:
                weigh(value)
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        format_ = super().wrap_str_format(value)
        if format_ is None:
            return None
        return _BoundedFormat(value.__self__, format_)


_environment = BoundedEnvironment()


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    tree = _environment.parse(source)
    tree = _Rewrite().visit(tree)
    tree.set_environment(_environment)
    return _environment.from_string(tree)


def render(source: str, values: dict[str, Any], *, seconds: float = MAX_SECONDS) -> str:
    """`source` rendered with `values`, or TemplateFailed saying why not and where."""
    token = _budget.set(_Budget(seconds))
    output: Iterator[str] | None = None
    try:
        output = _compiled(source).generate(values)
        parts: list[str] = []
        size = 0
        for part in output:
            size += len(part)
            if size > MAX_OUTPUT:
                raise TemplateFailed(
                    "is too large",
                    f"the message would be longer than {MAX_OUTPUT} characters",
                )
            parts.append(part)
        return "".join(parts)
    except TemplateFailed:
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateFailed(
            "does not parse", exc.message or "invalid syntax", exc.lineno
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateFailed(
            "names an unknown value", exc.message or "undefined", _line(exc)
        ) from None
    except TooLarge as exc:
        raise TemplateFailed("is too large", str(exc), _line(exc)) from None
    except TooSlow as exc:
        raise TemplateFailed("takes too long", str(exc), _line(exc)) from None
    except SecurityError as exc:
        raise TemplateFailed("is not allowed", str(exc), _line(exc)) from None
    except RecursionError as exc:
        raise TemplateFailed("fails", "it calls itself too deeply", _line(exc)) from None
    except Exception as exc:  # the template's own mistake: 1/0, 'a' - 1, int('x', 99)...
        raise TemplateFailed("fails", _describe(exc), _line(exc)) from None
    finally:
        if isinstance(output, abc.Generator):
            output.close()
        _budget.reset(token)


def _line(exc: BaseException) -> int | None:
    """The template line of the innermost template frame in the traceback (Jinja rewrites
    its frames to carry the template's own line numbers)."""
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
