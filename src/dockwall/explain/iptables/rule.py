"""One `-A CHAIN ...` line of iptables-save into a `Rule`, left to right as iptables reads it.

Two readers give the same rule. The fast one splits the line at every ` -`, so each
piece is one option with its values (`s 10.0.0.1/32`, `-dport 80`, `m tcp`), and looks
the piece up in a memo of the current module: a 10,000-rule ruleset is mostly the
same few options with a few distinct values, and this keeps the per-rule work to a
handful of dictionary lookups. It declines (returns None) whenever a line is not in
iptables-save's plain spelling, quotes included; the token reader then walks the
line token by token, exactly as iptables does.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection

from dockwall.explain.addresses import slow_net
from dockwall.explain.iptables import targets
from dockwall.explain.iptables.matches import (
    MODIFIERS,
    Cursor,
    RulesetParseError,
    parse_other,
    value_handler,
)
from dockwall.explain.netfilter import Action, Condition, Rule, Unsupported

JUMPS = frozenset({"-j", "-g", "--jump", "--goto"})
MODULES = frozenset({"-m", "--match"})
MEMO_LIMIT = 100_000
Memo = dict[str, Condition | None]
MEMO: dict[int, dict[str, Memo]] = {4: {}, 6: {}}
MISSING = Condition(Unsupported("not in the memo"))


def clear_memo() -> None:
    """Forget every memoised option and address (benchmarks start cold, like a new process)."""
    for memos in MEMO.values():
        memos.clear()
    slow_net.cache_clear()


def parse_rule(text: str, version: int, chains: Collection[str]) -> Rule:
    """`text` starts at `-A`; `chains` are the table's chains, so a jump is told from a target."""
    if '"' not in text and "'" not in text:
        rule = fast_rule(text, version, chains)
        if rule is not None:
            return rule
    return token_rule(text, version, chains)


def parse_rules(texts: list[str], version: int, chains: Collection[str], into: list[Rule]) -> None:
    """`parse_rule` for each text, appended to `into` (so on an error, `len(into)` is the
    index of the bad line); the loop behind every chain of a big ruleset."""
    fast = fast_rule
    append = into.append
    for text in texts:
        rule = fast(text, version, chains) if '"' not in text and "'" not in text else None
        append(rule if rule is not None else token_rule(text, version, chains))


def module_memo(memos: dict[str, Memo], module: str) -> Memo:
    found = memos.get(module)
    if found is None:
        found = memos[module] = {}
    return found


def fast_rule(text: str, version: int, chains: Collection[str]) -> Rule | None:
    pieces = text.split(" -")
    head = pieces[0]
    bang = "!" in text
    negate = negate_next = False
    if bang and head.endswith(" !"):
        negate, head = True, head[:-2]
    if not head.startswith("-A ") or " " in head[3:]:
        return None
    conditions: list[Condition] = []
    module = ""
    memos = MEMO.setdefault(version, {})
    memo = module_memo(memos, module)
    last = len(pieces) - 1
    for index in range(1, last + 1):
        piece = pieces[index]
        if bang:
            negate_next = piece.endswith(" !")
            if negate_next:
                piece = piece[:-2]
        if piece[1:2] == " " and piece[0] in "mjg":
            if negate or negate_next:
                return None
            if piece[0] == "m":
                module = piece[2:]
                if " " in module:
                    return None
                memo = memos.get(module) or module_memo(memos, module)
                continue
            action = target(piece, pieces[index + 1 :] if index < last else [], version, chains)
            return None if action is None else Rule(tuple(conditions), action, text)
        key = "!" + piece if negate else piece
        condition = memo.get(key, MISSING)
        if condition is MISSING:
            parsed = fast_condition(piece, negate, version, module)
            if parsed is None:
                return None
            condition, reusable = parsed
            if reusable and len(memo) < MEMO_LIMIT:
                memo[key] = condition
        if condition is not None:
            conditions.append(condition)
        negate = negate_next
    if negate:
        return None
    return Rule(tuple(conditions), targets.no_target(), text)


def fast_condition(
    piece: str, negate: bool, version: int, module: str
) -> tuple[Condition | None, bool] | None:
    """A piece not in the memo: its condition (None for `-p all`, a comment) and whether
    the piece's text alone decides it, or None when the fast reader must decline."""
    name, _, values = piece.partition(" ")
    option = "-" + name
    handler = value_handler(module, option)
    if handler is not None:
        if not values or " " in values:
            return None
        test = handler(values, version)
        return (None if test is None else Condition(test, negate)), True
    if not (name[:1].isalpha() or (name[:1] == "-" and name[1:2].isalpha())):
        return None
    if option in MODULES or option in JUMPS or option in MODIFIERS:
        return None
    tokens = [option, *values.split()]
    cursor = Cursor(tokens, 1, version, module)
    test = parse_other(cursor, option)
    if cursor.pos != len(tokens):
        return None
    return (None if test is None else Condition(test, negate)), False


def target(piece: str, after: list[str], version: int, chains: Collection[str]) -> Action | None:
    """`j NAME [--opt value ...]`: the target's options are the pieces after it."""
    option = "-j" if piece[0] == "j" else "-g"
    name = piece[2:]
    if " " not in name and not after:
        return targets.parse_target(option, name, [], version, chains) if name else None
    name, _, args = name.partition(" ")
    tail = args.split()
    if after:
        tail += ("-" + " -".join(after)).split()
    return targets.parse_target(option, name, tail, version, chains) if name else None


def tokenize(line: str) -> list[str]:
    """Quotes appear only around comments and log prefixes; split fast when there are none."""
    tokens = shlex.split(line) if '"' in line or "'" in line else line.split()
    if tokens and tokens[0].startswith("[") and tokens[0].endswith("]"):
        tokens = tokens[1:]
    return tokens


def token_rule(text: str, version: int, chains: Collection[str]) -> Rule:
    """The reference reader: one token at a time, options and values as iptables takes them."""
    tokens = tokenize(text)
    if len(tokens) < 2 or tokens[0] != "-A":
        raise RulesetParseError(f"expected `-A CHAIN ...`, got {text!r}")
    conditions: list[Condition] = []
    cursor = Cursor(tokens, 2, version)
    negate = False
    while cursor.pos < len(tokens):
        option = cursor.take()
        if option == "!":
            negate = True
            continue
        if option in MODULES:
            cursor.module = cursor.take()
        elif option in JUMPS:
            name = cursor.take()
            action = targets.parse_target(option, name, tokens[cursor.pos :], version, chains)
            return Rule(tuple(conditions), action, text)
        else:
            handler = value_handler(cursor.module, option)
            test = handler(cursor.take(), version) if handler else parse_other(cursor, option)
            if test is not None:
                conditions.append(Condition(test, negate))
        negate = False
    return Rule(tuple(conditions), targets.no_target(), text)
