"""Print the mutation score per module from mutmut's results in ./mutants (`make mutation`).

A mutant is caught when a test fails (killed) or the tests run out of time (timeout); the score
is caught / checked. Survivors are listed by name, for `mutmut show NAME`. Mutants not yet run
(a run limited to some modules) are counted apart and left out of the score.
"""

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): 1 and 3 a test failed, 0 all passed, 33 and 5 no test
# runs the function, SIGXCPU (24 and its forms) the CPU time limit; None not run.
CAUGHT = {1: "killed", 3: "killed", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 36: "timeout"}
STATUS = {0: "survived", 33: "no tests", 5: "no tests", None: "not run"}


def main(root: Path) -> int:
    metas = sorted(root.glob("app/**/*.py.meta"))
    if not metas:
        print(f"no results under {root}: run `make mutation` first", file=sys.stderr)
        return 1
    columns = ("score", "caught", "checked", "survived", "no tests", "timeout", "not run")
    print(f"{'module':28}", *(f"{column:>8}" for column in columns))
    survivors = []
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(CAUGHT.get(code) or STATUS.get(code, "suspicious") for code in codes.values())
        caught = counts["killed"] + counts["timeout"]
        checked = len(codes) - counts["not run"]
        score = f"{100 * caught / checked:.1f}%" if checked else "-"
        module = str(meta.relative_to(root)).removesuffix(".meta")
        values = (score, caught, checked, counts["survived"], counts["no tests"], counts["timeout"], counts["not run"])
        print(f"{module:28}", *(f"{value:>8}" for value in values))
        survivors += sorted(name for name, code in codes.items() if STATUS.get(code) in ("survived", "no tests"))
    if survivors:
        print("\nsurvivors (mutmut show NAME):", *survivors, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "mutants")))
