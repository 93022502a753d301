"""ALFWorld's text grammar, parsed once.

TextWorld's ``ContextSensitiveGrammar`` re-parses (with TatSu) every symbol
string and every condition each time it derives text, i.e. for every
admissible command of every step, and ``GameLogic`` re-parses the whole
``alfred.twl2`` (0.4 s) for every game. :class:`MemoGrammar` caches those
parses (derivations are unchanged: same rules, same order), and
:func:`game_logic` shares one parse between games whose grammars differ only in
their task sentence.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any


@functools.lru_cache(maxsize=8)
def _generic_logic(domain: str, grammar: str) -> Any:
    from textworld.envs.pddl import logic as pddl_logic

    logic = pddl_logic.GameLogic(domain=domain, grammar=grammar)
    logic.grammar = MemoGrammar(logic.grammar)
    return logic


_TASK_RE = re.compile(r'("task": \[\s*\{\s*"rhs": ")Your task is to: (.*?)("\s*\}\s*\])', re.S)


def game_logic(domain: str, grammar: str) -> Any:
    """Parsed ``GameLogic`` of a game; games differing only in their task sentence share one parse."""
    m = _TASK_RE.search(grammar)
    if m is None or set(m.group(2)) & set('#{}[]|"\\'):  # only plain sentences skip the parse
        return _generic_logic(domain, grammar)
    base = _generic_logic(domain, grammar[:m.start(2)] + "UNKNOWN GOAL." + grammar[m.end(2):])
    logic = copy.copy(base)
    logic.grammar = base.grammar.with_task(json.loads(f'"Your task is to: {m.group(2)}"'))
    return logic


# -------------------------------------------------------------------- grammar
def _context(context: dict) -> dict:
    """A derivation context for a sub-symbol.

    TextWorld's ``copy_context`` deep-copies the variables (entity infos) and
    the mapping for every symbol, which is most of the time a step takes;
    derivation only reads those values and rebinds keys, so copying the two
    dicts gives the same text.
    """
    return {"state": context["state"], "facts": context["facts"], "variables": dict(context["variables"]),
            "mapping": dict(context["mapping"]), "entity_infos": context["entity_infos"]}


def _make_memo_grammar_class() -> type:
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    class _MemoGrammar(textgen.ContextSensitiveGrammar):
        """A ``ContextSensitiveGrammar`` that parses each symbol string and query once.

        Derivations follow the base class's (same rules, same order, same
        text); the TatSu parses are cached, parsed symbols are deep-copied
        before use because derivation attaches contexts to them, and contexts
        are copied shallowly (see :func:`_context`).
        """

        def __init__(self, base: Any):
            super().__init__()
            self._rules = base._rules
            self._symbols: dict[str, list] = getattr(base, "_symbols", {})
            self._queries: dict[str, Any] = getattr(base, "_queries", {})

        def with_task(self, sentence: str) -> "_MemoGrammar":
            """A copy whose ``#task#`` rule says ``sentence`` (shares every other parse)."""
            other = type(self)(self)
            other._rules = dict(self._rules)
            other._rules["task"] = [textgen.ProductionRule(lhs="task", rhs=[textgen.TerminalSymbol(sentence)])]
            return other

        def _parse(self, text: str) -> list:
            if text not in self._symbols:
                self._symbols[text] = textgen._parse_and_convert(text, rule_name="symbols")
            return copy.deepcopy(self._symbols[text])

        def _rule(self, expr: str) -> Any:
            if expr not in self._queries:
                self._queries[expr] = Rule.parse_conjunctive_query(expr)
            return self._queries[expr]

        def _matches(self, expr: str, context: dict) -> Any:
            return context["state"].all_assignments(self._rule(expr), context["mapping"])

        def _expand(self, symbol: Any) -> list:
            if isinstance(symbol, textgen.ConditionalSymbol):
                if len(symbol.context) == 0:
                    raise ValueError("Empty context")
                contexts = [_context(symbol.context)]
                if symbol.given:
                    contexts = []
                    for mapping in self._matches(symbol.given, symbol.context):
                        ctx = _context(symbol.context)
                        ctx["variables"].update({ph.name: ctx["entity_infos"][v.name] for ph, v in mapping.items()})
                        ctx["mapping"].update(mapping)
                        contexts.append(ctx)
                out = []
                for ctx in contexts:  # Symbol.copy, without deep-copying the context
                    expression = copy.deepcopy(symbol.expression, {id(symbol.expression.context): {}})
                    expression.context = _context(ctx)
                    out.append(expression)
                return out
            if isinstance(symbol, textgen.ListSymbol):
                symbol.symbol.context = symbol.context
                return textgen.display_list(self._expand(symbol.symbol), symbol.context)
            return symbol.derive()

        def replace(self, start: Any) -> list:
            rules = self._rules.get(str(start))
            if not rules:
                raise textgen.CSGUnknownSymbolError(start)
            for rule in rules:  # the first applicable rule, as the base class picks it
                if not rule.condition or any(True for _ in self._matches(rule.condition, start.context)):
                    break
            else:
                raise IndexError(f"no applicable rule for #{start}#")
            symbols = copy.deepcopy(rule.rhs)
            for symbol in symbols:
                symbol.context = _context(start.context)
            return symbols

        def derive(self, start: str, context: dict | None = None) -> str:
            context = context or {}
            derivation = self._parse(start)[::-1]
            for symbol in derivation:
                symbol.context = _context(context) if context else {}
            derived = []
            while derivation:
                symbol = derivation.pop()
                if isinstance(symbol, textgen.TerminalSymbol):
                    derived.append(symbol)
                elif isinstance(symbol, textgen.NonterminalSymbol):
                    derivation += self.replace(symbol)[::-1]
                elif isinstance(symbol, (textgen.ConditionalSymbol, textgen.EvalSymbol, textgen.ListSymbol)):
                    derivation += self._expand(symbol)[::-1]
                else:
                    raise NotImplementedError(f"Unknown symbol: {type(symbol)}")
            return "".join(map(str, derived))

    return _MemoGrammar


@functools.lru_cache(maxsize=1)
def _memo_grammar_class() -> type:
    return _make_memo_grammar_class()


def MemoGrammar(base: Any) -> Any:  # noqa: N802 - builds an instance of a lazily defined class
    """Wrap a parsed ``ContextSensitiveGrammar`` so that its parses are memoized."""
    return _memo_grammar_class()(base)
