#!/usr/bin/env python3
"""Generator for cuGetProcAddress's table (libcuda/procaddr.tab).

Modes:
  import TSV OUT.tab       derive the checked-in table from a measured TSV
                           (name, flags, from_version, export|-, CUresult,
                           status), written only where the answer changes.
                           Run by hand when the measurement is redone.
  c TAB OUT.c [SPEC]       emit g_procaddr.c: the sorted name index and the
                           version ladders, taking the address of each
                           export through 'extern void NAME(void);'.  With
                           SPEC (include/cuda.spec) every export must be a
                           function of the spec.
  stub TAB OUT.c [NAME..]  emit a test double defining every export of the
                           table except the NAMEs (defined by the code under
                           test), plus a name <-> address list.

Table format (one line per symbol and flags class):
  <name> <TAB> legacy|ptds <TAB> <version><export> ...
where <export> is '=' (the name itself), '+SUFFIX' (name + suffix) or
':FULLNAME'.  'legacy' answers flags 0 and 1 (the driver treats them alike);
'ptds' answers flag 2 and is present only where it differs from 'legacy'.
A version below a ladder's first step is VERSION_NOT_SUFFICIENT; a name
absent from the table is SYMBOL_NOT_FOUND.
"""

import re
import sys

CLASSES = ("legacy", "ptds")
VERSION_MAX = 13000     # the driver version the table describes


def die(msg):
    sys.stderr.write("gen_procaddr: %s\n" % msg)
    sys.exit(1)


def enc_export(name, export):
    if export == name:
        return "="
    if export.startswith(name):
        return "+" + export[len(name):]
    return ":" + export


def dec_export(name, tok, where):
    if tok == "=":
        return name
    if tok.startswith("+") and len(tok) > 1:
        return name + tok[1:]
    if tok.startswith(":") and len(tok) > 1:
        return tok[1:]
    die("%s: bad export %r" % (where, tok))


def ladder_of(rows):
    """rows: sorted (from_version, export, result, status) -> [(ver, export)]"""
    out = []
    for ver, export, res, status in rows:
        if ver > VERSION_MAX:
            if res != 1 or status != -1:
                die("%d: above the driver version but not INVALID_VALUE" % ver)
            continue
        if res != 0:
            die("%d: unexpected CUresult %d" % (ver, res))
        if export == "-":
            if out:
                die("%d: a symbol that disappears again" % ver)
            continue
        if status != 0:
            die("%d: export with status %d" % (ver, status))
        out.append((ver, export))
    return out


def do_import(tsv, out_path):
    groups = {}
    seen = set()
    for ln, line in enumerate(open(tsv), 1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        if len(f) != 6:
            die("%s:%d: expected 6 fields" % (tsv, ln))
        if line in seen:        # the measurement lists some names twice
            continue
        seen.add(line)
        name = "" if f[0] == "(empty)" else f[0]
        groups.setdefault((name, int(f[1])), []).append(
            (int(f[2]), f[3], int(f[4]), int(f[5])))
    names = sorted({n for n, _ in groups})
    lines = []
    for name in names:
        lad = {}
        for flag in (0, 1, 2):
            rows = groups.get((name, flag))
            if rows is None:
                die("%s: flags %d not measured" % (name, flag))
            lad[flag] = ladder_of(sorted(rows))
        if lad[0] != lad[1]:
            die("%s: flags 0 and 1 differ; the format assumes they do not" % name)
        if not lad[0] and not lad[2]:
            continue            # never found: absent from the table
        if not name:
            die("the empty name resolves to something")
        lines.append((name, "legacy", lad[0]))
        if lad[2] != lad[0]:
            lines.append((name, "ptds", lad[2]))
    with open(out_path, "w") as o:
        o.write("# cuGetProcAddress table: what NVIDIA's driver 580 (13000) answers,\n"
                "# derived by 'tools/gen_procaddr.py import' from the measured\n"
                "# procaddress-580.tsv.  Format: see tools/gen_procaddr.py.\n")
        for name, cls, lad in lines:
            steps = " ".join("%d%s" % (v, enc_export(name, e)) for v, e in lad)
            o.write("%s\t%s\t%s\n" % (name, cls, steps))


def read_table(path):
    syms = {}
    for ln, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        where = "%s:%d" % (path, ln)
        if len(f) != 3:
            die("%s: expected name, class, steps" % where)
        name, cls, steps = f
        if not re.fullmatch(r"cu[A-Za-z0-9_]+", name):
            die("%s: bad name %r" % (where, name))
        if cls not in CLASSES:
            die("%s: bad class %r" % (where, cls))
        ent = syms.setdefault(name, {})
        if cls in ent:
            die("%s: %s %s listed twice" % (where, name, cls))
        lad = []
        for tok in steps.split():
            m = re.fullmatch(r"(\d+)(.+)", tok)
            if not m:
                die("%s: bad step %r" % (where, tok))
            ver = int(m.group(1))
            if ver > VERSION_MAX or (lad and ver <= lad[-1][0]):
                die("%s: version %d out of order or above %d" % (where, ver, VERSION_MAX))
            export = dec_export(name, m.group(2), where)
            if not re.fullmatch(r"cu[A-Za-z0-9_]+", export):
                die("%s: bad export %r" % (where, export))
            lad.append((ver, export))
        if not lad:
            die("%s: empty ladder" % where)
        ent[cls] = lad
    for name, ent in syms.items():
        if "legacy" not in ent:
            die("%s: no legacy line" % name)
    return syms


def spec_names(path):
    names = set()
    for line in open(path):
        m = re.match(r"\s*\d+\s+\w+\s+(cu\w+)\s*\(", line)
        if m:
            names.add(m.group(1))
    return names


def all_exports(syms):
    out = set()
    for ent in syms.values():
        for lad in ent.values():
            out.update(e for _, e in lad)
    return sorted(out)


BANNER = "/* Generated by tools/gen_procaddr.py from %s -- do not edit. */\n"


def do_c(tab, out_path, spec=None):
    syms = read_table(tab)
    exports = all_exports(syms)
    if spec:
        known = spec_names(spec)
        missing = [e for e in exports if e not in known]
        if missing:
            die("exports not in %s: %s" % (spec, " ".join(missing)))
    o = [BANNER % tab.split("/")[-1],
         "/*",
         " * Only the addresses of our exports are taken here, so each is",
         " * declared with a neutral type; no header with the real prototypes",
         " * is included in this translation unit.",
         " */",
         '#include "procaddr.h"', ""]
    o += ["extern void %s(void);" % e for e in exports]
    o += ["", "static const struct lc_pa_step steps[] = {"]
    index = []
    pos = 0
    for name in sorted(syms):
        ent = syms[name]
        refs = {}
        for cls in CLASSES:
            lad = ent.get(cls)
            if lad is None:
                continue
            refs[cls] = (pos, len(lad))
            for ver, e in lad:
                o.append("\t{ %d, %s }," % (ver, e))
            pos += len(lad)
        if "ptds" not in refs:
            refs["ptds"] = refs["legacy"]
        index.append((name, refs))
    o += ["};", "", "static const struct lc_pa_sym syms[] = {"]
    for name, refs in index:
        o.append('\t{ "%s", %d, %d, %d, %d },' % (name, refs["legacy"][0], refs["legacy"][1],
                                                   refs["ptds"][0], refs["ptds"][1]))
    o += ["};", "",
          "const struct lc_pa_table lc_procaddr_table = {",
          "\t.syms = syms,",
          "\t.nsyms = sizeof(syms) / sizeof(syms[0]),",
          "\t.steps = steps,",
          "};", ""]
    with open(out_path, "w") as f:
        f.write("\n".join(o))


def do_stub(tab, out_path, defined):
    syms = read_table(tab)
    exports = all_exports(syms)
    o = [BANNER % tab.split("/")[-1],
         "/* Test double: one distinct function per export of the table. */",
         '#include "pa_stub.h"', "",
         "volatile int pa_stub_last;", ""]
    for i, e in enumerate(exports):
        if e in defined:
            o.append("extern void %s(void);" % e)
        else:
            o += ["void %s(void);" % e,
                  "void %s(void)" % e, "{", "\tpa_stub_last = %d;" % (i + 1), "}"]
    o += ["", "const struct pa_stub_sym pa_stub_syms[] = {"]
    o += ['\t{ "%s", %s },' % (e, e) for e in exports]
    o += ["};", "const unsigned pa_stub_nsyms = %d;" % len(exports), ""]
    with open(out_path, "w") as f:
        f.write("\n".join(o))


def main(argv):
    if len(argv) >= 3 and argv[0] == "import":
        do_import(argv[1], argv[2])
    elif len(argv) in (3, 4) and argv[0] == "c":
        do_c(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    elif len(argv) >= 3 and argv[0] == "stub":
        do_stub(argv[1], argv[2], set(argv[3:]))
    else:
        die("usage: import TSV OUT | c TAB OUT [SPEC] | stub TAB OUT [DEFINED...]")


if __name__ == "__main__":
    main(sys.argv[1:])
