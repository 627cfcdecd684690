"""Summary of ``mutmut results --all true`` (read from stdin): counts per module, the score and the
mutants not detected. Used by ``tools/mutation_score``.

Score = detected / (detected + survived + no tests + suspicious), detected = killed + timeout +
segfault (+ caught by a type check); mutants not checked (skipped, interrupted) are left out."""

import collections
import re
import sys

DETECTED = ("killed", "timeout", "segfault", "caught by type check")
MISSED = ("survived", "no tests", "suspicious")


def main() -> None:
    counts = collections.defaultdict(collections.Counter)
    missed = []
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        module = re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]
        counts[module][status] += 1
        if status in MISSED:
            missed.append(f"{status:10} {name}")
    columns = ("killed", "timeout", "survived", "no tests", "suspicious")
    print(f"{'module':38}" + "".join(f"{c:>11}" for c in columns) + f"{'unchecked':>11}   score")
    total = collections.Counter()
    for module in sorted(counts):
        _row(module, counts[module], columns)
        total.update(counts[module])
    _row("total", total, columns)
    print("\nnot detected (`mutmut show NAME` prints the change):")
    print("\n".join(sorted(missed)) or "none")


def _row(label: str, c: collections.Counter, columns: tuple[str, ...]) -> None:
    detected = sum(c[s] for s in DETECTED)
    missed = sum(c[s] for s in MISSED)
    unchecked = sum(c.values()) - detected - missed
    score = f"{100.0 * detected / (detected + missed):6.1f}%" if detected + missed else "     -"
    print(f"{label:38}" + "".join(f"{c[s]:11}" for s in columns) + f"{unchecked:11}  {score}")


if __name__ == "__main__":
    main()
