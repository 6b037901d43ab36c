#!/usr/bin/env python3
"""Regexp-based mutant generator for loto's C++ sources (stdlib only).

In the spirit of universalmutator (which cannot be installed here): each mutant is ONE
textual change to one place of the file, made by a rule that knows a little C++. Comments,
string and character literals and preprocessor lines are never mutated. The source is
clang-formatted, so binary operators are recognised by the spaces around them, which
keeps template brackets, `->`, `&&` in `T&&` and `<<` out of the operator rules.

Rules, in the order they are applied on each line (mutants are numbered 1..N in the order
line, rule, position, so the numbering is deterministic for a given file):
  relational   == <-> !=,  < -> <=,  <= -> <,  > -> >=,  >= -> >
  logical      && <-> ||
  arithmetic   + <-> -,  += <-> -=,  ++ <-> --
  negate       if (C) / while (C) -> if (!(C)) / while (!(C))
  not-removed  !x -> x
  constant     0 <-> 1,  true <-> false
  return       return EXPR; -> return {};   (a value-initialised constant of the type)
  break        break; <-> continue;
  delete       a statement that is a call, an assignment or an increment -> removed
               (its lines become empty, so line numbers and debug info do not move)

Usage (FILE is a path relative to the current directory, as the equivalent list names it):
  mutate.py list FILE [EQUIVALENT_LIST]
      one line per mutant: ID<TAB>LINE<TAB>RULE<TAB>- OLD<TAB>+ NEW<TAB>REASON, where REASON
      is the reviewed reason when EQUIVALENT_LIST lists the mutant, else empty
  mutate.py apply FILE ID OUT         writes FILE with mutant ID applied to OUT
  mutate.py sample FILE N SEED        the IDs of N mutants drawn with SEED, one a line
  mutate.py compile BUILD_DIR SRC OUT compiles SRC as compile_commands.json says, into OUT
  mutate.py object BUILD_DIR SRC      prints the path of SRC's object file in BUILD_DIR

The equivalent list (tests/tools/mutation-equivalent.txt) holds records separated by blank
lines; '#' lines are comments. A record is the file, the mutated code as '- OLD' and
'+ NEW' (as `list` prints them), optionally 'occurrence: N' (only the Nth line of the file
holding OLD, when the same code appears more than once), and 'reason: WHY'.
"""

import json
import os
import random
import re
import shlex
import subprocess
import sys

# --- which characters are code ---------------------------------------------------------


def code_mask(text):
    """A list of booleans, True where text[i] is code (not a comment, literal or
    preprocessor line)."""
    mask = [True] * len(text)
    i = 0
    n = len(text)
    at_line_start = True  # only whitespace seen since the last newline
    while i < n:
        c = text[i]
        if c == "\n":
            at_line_start = True
            i += 1
            continue
        if at_line_start and c == "#":
            # preprocessor line, with backslash continuations
            j = i
            while j < n:
                if text[j] == "\n" and text[j - 1] != "\\":
                    break
                j += 1
            for k in range(i, j):
                mask[k] = False
            i = j
            continue
        if c not in " \t":
            at_line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                mask[k] = False
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if text[k] != "\n":
                    mask[k] = False
            i = j
            continue
        m = re.match(r'R"([^()\\ ]{0,16})\(', text[i:])
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = ")" + m.group(1) + '"'
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            for k in range(i, j):
                if text[k] != "\n":
                    mask[k] = False
            i = j
            continue
        if c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            # a string or character literal (a digit separator 1'000 is not one)
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            for k in range(i, j):
                mask[k] = False
            i = j
            continue
        i += 1
    return mask


# --- the rules -------------------------------------------------------------------------

SPACED = r"(?<= )({op})(?= )"
SWAPS = [
    ("relational", r"==", "!="),
    ("relational", r"!=", "=="),
    ("relational", r"<=", "<"),
    ("relational", r"<", "<="),
    ("relational", r">=", ">"),
    ("relational", r">", ">="),
    ("logical", r"&&", "||"),
    ("logical", r"\|\|", "&&"),
    ("arithmetic", r"\+", "-"),
    ("arithmetic", r"-", "+"),
    ("arithmetic", r"\+=", "-="),
    ("arithmetic", r"-=", "+="),
]
SWAP_RES = [(rule, re.compile(SPACED.format(op=op)), new) for rule, op, new in SWAPS]
INCDEC_RE = re.compile(r"(\+\+|--)(?=[A-Za-z_(])|(?<=[A-Za-z0-9_)\]])(\+\+|--)")
COND_RE = re.compile(r"\b(if|while) \(")
NOT_RE = re.compile(r"(?<![!=<>])!(?!=)")
CONST_RE = re.compile(r"(?<![\w.'])(0|1|true|false)(?![\w.'])")
CONST_SWAP = {"0": "1", "1": "0", "true": "false", "false": "true"}
RETURN_RE = re.compile(r"^(\s*)return (.+);\s*$")
BREAK_RE = re.compile(r"^(\s*)(break|continue);\s*$")
# a statement that does something and declares nothing: f(...);  a.b->c(...);  x = ...;
# x += ...;  ++x;  x++;
CALL_RE = re.compile(r"^\s*(::)?[A-Za-z_][\w:]*((\.|->)[A-Za-z_]\w*)*\(")
ASSIGN_RE = re.compile(r"^\s*\*?[A-Za-z_][\w.]*(->\w+)*(\[[^\]]*\])?\s*([-+*/|&]?=)[^=]")
INCR_RE = re.compile(r"^\s*((\+\+|--)[A-Za-z_][\w.]*|[A-Za-z_][\w.]*(\+\+|--));\s*$")
NOT_A_STATEMENT = re.compile(
    r"^\s*(return|throw|case|default|else|do|for|if|while|switch)\b|= (delete|default);"
)


def all_code(mask, start, end):
    return all(mask[start:end])


def balanced_paren_end(line, open_index):
    """Index just after the ')' that closes line[open_index] == '(', or -1."""
    depth = 0
    for j in range(open_index, len(line)):
        if line[j] == "(":
            depth += 1
        elif line[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


class Mutant:
    __slots__ = ("line", "rule", "edits")

    def __init__(self, line, rule, edits):
        self.line = line  # 1-based first line
        self.rule = rule
        self.edits = edits  # [(line index 0-based, new line text)]


def statement_end(lines, masks, first):
    """For a statement starting on lines[first], the index of its last line (where the
    brackets balance and the code ends with ';'), or -1."""
    depth = 0
    for k in range(first, min(first + 12, len(lines))):
        code = "".join(ch if masks[k][j] else " " for j, ch in enumerate(lines[k]))
        for ch in code:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        stripped = code.rstrip()
        if depth == 0 and stripped.endswith(";"):
            return k
        if depth < 0 or (depth == 0 and stripped.endswith(("{", "}"))):
            return -1
    return -1


def generate(text):
    lines = text.split("\n")
    flat_mask = code_mask(text)
    masks = []
    pos = 0
    for line in lines:
        masks.append(flat_mask[pos : pos + len(line)])
        pos += len(line) + 1

    mutants = []
    prev_code_end = ";"  # the last code character before this line
    for idx, line in enumerate(lines):
        mask = masks[idx]
        if not any(mask) or not line.strip():
            continue
        code_only = "".join(ch if mask[j] else " " for j, ch in enumerate(line))
        if not code_only.strip():
            continue

        def add(rule, start, end, new, idx=idx, line=line):
            mutants.append(Mutant(idx + 1, rule, [(idx, line[:start] + new + line[end:])]))

        for rule, rx, new in SWAP_RES:
            for m in rx.finditer(line):
                if not all_code(mask, m.start(), m.end()):
                    continue
                if rule == "arithmetic" and '"' in (line[m.start() - 2], line[m.end() + 1 : m.end() + 2]):
                    continue  # string concatenation: "a" - b does not compile
                add(rule, m.start(), m.end(), new)
        for m in INCDEC_RE.finditer(line):
            if all_code(mask, m.start(), m.end()):
                op = m.group(0)
                add("arithmetic", m.start(), m.end(), "--" if op == "++" else "++")
        for m in COND_RE.finditer(line):
            open_index = m.end() - 1
            close = balanced_paren_end(line, open_index)
            if close > 0 and all_code(mask, m.start(), m.end()):
                cond = line[open_index + 1 : close - 1]
                add("negate", open_index, close, "(!(" + cond + "))")
        for m in NOT_RE.finditer(line):
            if all_code(mask, m.start(), m.end()):
                add("not-removed", m.start(), m.end(), "")
        for m in CONST_RE.finditer(line):
            if all_code(mask, m.start(), m.end()):
                add("constant", m.start(), m.end(), CONST_SWAP[m.group(1)])
        m = RETURN_RE.match(line)
        if m and all_code(mask, 0, len(line.rstrip())):
            value = m.group(2).strip()
            if value not in ("{}", "true", "false", "0", "1", "nullptr") and not value.startswith(
                "{"
            ):
                add("return", 0, len(line), m.group(1) + "return {};")
        m = BREAK_RE.match(line)
        if m and all_code(mask, 0, len(line.rstrip())):
            other = "continue" if m.group(2) == "break" else "break"
            add("break", 0, len(line), m.group(1) + other + ";")

        starts_statement = prev_code_end in ";{}:" and not NOT_A_STATEMENT.search(code_only)
        if starts_statement and (
            CALL_RE.match(code_only) or ASSIGN_RE.match(code_only) or INCR_RE.match(code_only)
        ):
            last = statement_end(lines, masks, idx)
            if last >= 0:
                mutants.append(Mutant(idx + 1, "delete", [(k, "") for k in range(idx, last + 1)]))

        stripped = code_only.rstrip()
        if stripped:
            prev_code_end = stripped[-1]
    return lines, mutants


def describe(lines, mutant):
    old = " ".join(lines[k].strip() for k, _ in mutant.edits)
    new = " ".join(text.strip() for _, text in mutant.edits).strip()
    return old, new


def apply(lines, mutant):
    out = list(lines)
    for k, text in mutant.edits:
        out[k] = text
    return "\n".join(out)


def squash(code):
    return " ".join(code.split())


def read_equivalent(path):
    """{(file, old, new): reason} from the reviewed list; exits 65 on a malformed record."""
    listed = {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    number = 0
    for block in re.split(r"\n\s*\n", text):
        rows = [r for r in block.split("\n") if r.strip() and not r.startswith("#")]
        if not rows:
            continue
        number += 1
        if (
            len(rows) < 4
            or not rows[1].startswith("- ")
            or not rows[2].startswith("+")
            or not re.match(r"(reason: \S|occurrence: [1-9][0-9]*$)", rows[3])
            or (rows[3].startswith("occurrence") and not (len(rows) > 4 and rows[4].startswith("reason: ")))
        ):
            sys.stderr.write(
                f"mutate.py: {path}: record {number} ({rows[0].strip()}) is not "
                "FILE / '- OLD' / '+ NEW' / 'reason: WHY'\n"
            )
            sys.exit(65)
        occurrence = 0
        if rows[3].startswith("occurrence: "):
            occurrence = int(rows[3].split()[1])
            rows = rows[:3] + rows[4:]
        reason = " ".join([rows[3][8:].strip()] + [r.strip() for r in rows[4:]])
        listed[(rows[0].strip(), squash(rows[1][2:]), squash(rows[2][1:]), occurrence)] = reason
    return listed


def compile_entry(build_dir, src):
    with open(os.path.join(build_dir, "compile_commands.json"), encoding="utf-8") as f:
        entries = json.load(f)
    want = os.path.realpath(src)
    for entry in entries:
        path = os.path.join(entry["directory"], entry["file"])
        if os.path.realpath(path) == want:
            args = entry.get("arguments") or shlex.split(entry["command"])
            return entry["directory"], args
    sys.stderr.write(f"mutate.py: {src} is not in {build_dir}/compile_commands.json\n")
    sys.exit(66)


def main(argv):
    if len(argv) >= 4 and argv[1] in ("compile", "object"):
        directory, args = compile_entry(argv[2], argv[3])
        out = args.index("-o") + 1
        if argv[1] == "object":
            print(os.path.join(directory, args[out]))
            return 0
        args[out] = os.path.abspath(argv[4])
        return subprocess.run(args, cwd=directory, check=False).returncode
    if len(argv) < 3 or argv[1] not in ("list", "apply", "sample"):
        sys.stderr.write(__doc__)
        return 64
    try:
        with open(argv[2], encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        sys.stderr.write(f"mutate.py: cannot read {argv[2]}: {e.strerror}\n")
        return 66
    lines, mutants = generate(text)
    if argv[1] == "list":
        listed = read_equivalent(argv[3]) if len(argv) > 3 else {}
        out = []
        for number, mutant in enumerate(mutants, 1):
            old, new = describe(lines, mutant)
            # which occurrence of this code in the file (1: the first line holding it)
            first = squash(lines[mutant.edits[0][0]])
            occurrence = sum(1 for k in range(mutant.edits[0][0] + 1) if squash(lines[k]) == first)
            key = (argv[2], squash(old), squash(new))
            reason = listed.get(key + (occurrence,), "") or listed.get(key + (0,), "")
            out.append(f"{number}\t{mutant.line}\t{mutant.rule}\t- {old}\t+ {new}\t{reason}\n")
        sys.stdout.write("".join(out))
        return 0
    if argv[1] == "sample":
        count, seed = int(argv[3]), int(argv[4])
        chosen = random.Random(seed).sample(range(1, len(mutants) + 1), min(count, len(mutants)))
        for number in sorted(chosen):
            print(number)
        return 0
    number = int(argv[3])
    if not 1 <= number <= len(mutants):
        sys.stderr.write(f"mutate.py: {argv[2]} has mutants 1..{len(mutants)}, not {number}\n")
        return 64
    with open(argv[4], "w", encoding="utf-8") as f:
        f.write(apply(lines, mutants[number - 1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
