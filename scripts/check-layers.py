#!/usr/bin/python3
"""Check the include rules of ARCHITECTURE.md ("What may include what").

Every #include "x.h" in the C sources is resolved to the folder that holds
x.h; the pair (folder of the includer, folder of the header) must be
allowed by RULES.  System headers (<...>) are checked only where a layer
must stay free of a library (nginx in shared/, libuv in shared/ and
ngx_module/, libmongoc outside the MongoDB backend and ticketd's store
pool).  Prints every violation and exits 1 when there is one, so that
`make test` fails.

    scripts/check-layers.py [repo]
"""

import os
import re
import sys

# who -> the folders whose headers it may include (its own is implied)
RULES = {
    "shared/core": {"shared/core"},
    "shared/proto": {"shared/core"},
    "shared/domain": {"shared/core"},
    "shared/store": {"shared/core", "shared/proto", "shared/domain"},
    "shared/store/sqlite": {"shared/core", "shared/domain", "shared/store"},
    "shared/store/mongo": {"shared/core", "shared/domain", "shared/store"},
    "shared/api": {"shared/core", "shared/proto", "shared/domain",
                   "shared/store"},
    "ngx_module": {"shared/core", "shared/proto", "shared/domain",
                   "shared/store", "shared/api"},
    "daemon": {"shared/core", "shared/proto", "shared/domain",
               "shared/store", "shared/api"},
    "t/unit": None,                      # tests may look inside anything
    "t/fuzz": None,
    "t/mongo": None,
}

# headers a folder that may include the store must still not use: the
# backends are reached only through ts_store.h's interface
PRIVATE = {
    "ts_store_impl.h": {"shared/store", "shared/store/sqlite",
                        "shared/store/mongo"},
    "ts_store_sqlite.h": {"shared/store/sqlite"},
    "ts_store_mongo.h": {"shared/store/mongo"},
    "ts_api_internal.h": {"shared/api"},
    "ts_triage_internal.h": {"shared/domain"},
}

# system headers kept out of folders (prefix match)
FORBIDDEN_SYSTEM = [
    ("shared", "ngx_", "nginx types stay in ngx_module/"),
    ("shared", "uv.h", "libuv stays in daemon/"),
    ("ngx_module", "uv.h", "libuv stays in daemon/"),
    ("ngx_module", "mongoc", "libmongoc stays in the MongoDB backend"),
    ("shared/core", "mongoc", "libmongoc stays in the MongoDB backend"),
    ("shared/proto", "mongoc", "libmongoc stays in the MongoDB backend"),
    ("shared/domain", "mongoc", "libmongoc stays in the MongoDB backend"),
    ("shared/api", "mongoc", "libmongoc stays in the MongoDB backend"),
    ("shared/store/sqlite", "mongoc", "libmongoc stays in the MongoDB "
                                      "backend"),
]

INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', re.M)


def sources(repo):
    for top in ("shared", "ngx_module", "daemon", "t/unit", "t/fuzz",
                "t/mongo"):
        for root, dirs, files in os.walk(os.path.join(repo, top)):
            dirs[:] = [d for d in dirs if d != "node_modules"]
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(root, f), repo)


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..")
    files = sorted(sources(repo))
    where = {}
    for f in files:
        where.setdefault(os.path.basename(f), set()).add(os.path.dirname(f))
    bad = []
    for name, dirs in sorted(where.items()):
        if name.endswith(".h") and len(dirs) > 1:
            bad.append("%s: one header name in %s" % (name, sorted(dirs)))
    for f in files:
        folder = os.path.dirname(f)
        if folder not in RULES:
            bad.append("%s: folder %s has no rule in %s" % (
                f, folder, os.path.basename(__file__)))
            continue
        allowed = RULES[folder]
        with open(os.path.join(repo, f), encoding="utf-8") as fh:
            text = fh.read()
        for kind, inc in INCLUDE.findall(text):
            if kind == "<":
                for prefix, banned, why in FORBIDDEN_SYSTEM:
                    if (folder == prefix or folder.startswith(prefix + "/")) \
                            and inc.startswith(banned):
                        bad.append("%s: includes <%s>: %s" % (f, inc, why))
                continue
            base = os.path.basename(inc)
            homes = where.get(base)
            if not homes:
                continue                 # generated or system-ish
            home = sorted(homes)[0]
            if allowed is not None and home != folder \
                    and home not in allowed:
                bad.append("%s: includes %s (%s), which %s may not use"
                           % (f, base, home, folder))
            private = PRIVATE.get(base)
            if allowed is not None and private and folder not in private:
                bad.append("%s: includes %s, private to %s"
                           % (f, base, ", ".join(sorted(private))))
    for line in bad:
        print("check-layers: " + line)
    if bad:
        print("check-layers: %d violation(s) of ARCHITECTURE.md's include "
              "rules" % len(bad))
        return 1
    print("check-layers: %d files follow ARCHITECTURE.md's include rules"
          % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
