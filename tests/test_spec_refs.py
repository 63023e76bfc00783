"""The project carries its own semantics: docs/spec.md, and every citation points into it.

No tracked file refers to a specification outside the repository (the former
external SPEC document), and every section a file cites as "docs/spec.md §x.y"
or "spec §x.y" (or that docs/spec.md cites of itself) is a section of
docs/spec.md, whose numbering (§1 … §8, 2.1 … 2.9, 6.0 … 6.6, 8.1 … 8.6) is
kept so that old citations keep their meaning.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC_PAGE = "docs/spec.md"
THIS = "tests/test_spec_refs.py"
BINARY = {".png", ".pdf", ".npz", ".npy", ".gz", ".zip", ".jpg", ".jpeg", ".ico", ".pkl"}

# Spelled in pieces so that this file does not match itself.
EXTERNAL = re.compile(r"\b" + "SP" + r"EC\b" + "|" + "SP" + r"EC\.md")
NUMBER = r"(\d+(?:\.\d+)?)"
# "docs/spec.md §2.4", "[docs/spec.md](spec.md) §2.4", "spec §2.4", and what follows
# such a citation: ", §2.8", " / §2.8", " and §6.0", "–6.4", ", 6.2".
CITATION = re.compile(r"(?:docs/spec\.md\)?|\bspec)\s*§\s*" + NUMBER +
                      r"((?:\s*(?:,|/|\band\b|–|-)\s*§?\s*\d+(?:\.\d+)?)*)")
FOLLOWING = re.compile(NUMBER)
BARE = re.compile(r"§\s*" + NUMBER)
HEADING = re.compile(r"^#{2,4} " + NUMBER + r"\.? ", re.M)

# Every section number of the specification the project was written from.
KEPT = (["1", "2", "3", "4", "5", "6", "7", "8"] + [f"2.{i}" for i in range(1, 10)]
        + [f"6.{i}" for i in range(7)] + [f"8.{i}" for i in range(1, 7)])


def _tracked_text_files() -> dict[str, str]:
  try:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode()
  except (OSError, subprocess.CalledProcessError):
    pytest.skip("not a git checkout: no list of tracked files")
  files = {}
  for rel in filter(None, out.split("\0")):
    path = ROOT / rel
    if path.suffix.lower() in BINARY or not path.is_file():
      continue
    data = path.read_bytes()
    if b"\0" in data[:8192]:
      continue
    try:
      files[rel] = data.decode("utf-8")
    except UnicodeDecodeError:
      continue
  return files


def _sections() -> set[str]:
  return set(HEADING.findall((ROOT / SPEC_PAGE).read_text(encoding="utf-8")))


def _cited(text: str) -> list[tuple[int, str]]:
  """(line, section) of every citation of docs/spec.md in ``text``."""
  out = []
  for m in CITATION.finditer(text):
    line = text.count("\n", 0, m.start()) + 1
    out += [(line, n) for n in [m.group(1), *FOLLOWING.findall(m.group(2))]]
  return out


def test_the_spec_keeps_every_section_number():
  missing = [n for n in KEPT if n not in _sections()]
  assert not missing, f"{SPEC_PAGE} lacks sections {missing}"


def test_no_tracked_file_refers_to_the_external_spec():
  hits = [f"{rel}:{n}: {line.strip()}"
          for rel, text in _tracked_text_files().items() if rel not in (SPEC_PAGE, THIS)
          for n, line in enumerate(text.splitlines(), 1) if EXTERNAL.search(line)]
  assert not hits, ("cite docs/spec.md instead:\n"
                    + "\n".join(hits[:50]) + (f"\n… {len(hits) - 50} more" if len(hits) > 50
                                              else ""))


# The team's notes outside the repository, which a clone does not have.
OUTSIDE = re.compile(r"\.\./shared|\b(?:DESI" + r"GN|ENVIRON" + r"MENT|STY" + r"LE)\.md")


def test_no_tracked_file_refers_to_files_outside_the_repository():
  hits = [f"{rel}:{n}: {line.strip()}"
          for rel, text in _tracked_text_files().items() if rel != THIS
          for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
  assert not hits, "a clone has no such file:\n" + "\n".join(hits[:50])


def test_every_cited_section_exists():
  sections = _sections()
  files = _tracked_text_files()
  files.setdefault(SPEC_PAGE, (ROOT / SPEC_PAGE).read_text(encoding="utf-8"))
  bad = []
  for rel, text in files.items():
    if rel == THIS:
      continue
    cited = _cited(text)
    if rel == SPEC_PAGE:  # the page cites itself without a prefix
      cited = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BARE.finditer(text)]
    bad += [f"{rel}:{line}: §{n}" for line, n in cited if n not in sections]
  assert not bad, f"sections not in {SPEC_PAGE}:\n" + "\n".join(bad)


def test_the_citation_pattern():
  text = ("(docs/spec.md §2.9, §6.5) [docs/spec.md](../docs/spec.md) §6.1, 6.2; "
          "spec §6.2–6.4; spec §2.4 / §2.8; spec §1 and §6.0; spec §1 steps 1–3; "
          "spec §4, Fig. 8; inspect §9; (He et al. 2016, §4.2)")
  assert [n for _, n in _cited(text)] == ["2.9", "6.5", "6.1", "6.2", "6.2", "6.4", "2.4",
                                          "2.8", "1", "6.0", "1", "4"]
  assert EXTERNAL.search("see " + "SP" + "EC §2") and EXTERNAL.search("SP" + "EC.md")
  assert not EXTERNAL.search("PartitionSpec, docs/spec.md, kernelspec")
