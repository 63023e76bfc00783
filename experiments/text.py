"""Text for the language-model experiments: WikiText-103 for those who have it, FOLDOC offline.

Both come as three splits of plain text (train, valid, test) that
:func:`dana_jax.data.byte_tokens` turns into byte streams and
:func:`dana_jax.data.windows` into next-token windows.

* **WikiText-103** (Merity et al. 2016, "Pointer Sentinel Mixture Models"):
  the standard release files ``wiki.train.tokens``, ``wiki.valid.tokens``,
  ``wiki.test.tokens`` (``wikitext-103-v1``), or the raw release's
  ``wiki.train.raw`` … (``wikitext-103-raw-v1``), in a directory the user
  gives. They cannot be downloaded here.
* **FOLDOC** (the default; offline): the Free On-line Dictionary of Computing
  (Denis Howe, foldoc.org; GFDL), installed by Debian's ``dict-foldoc``
  package as ``/usr/share/dictd/foldoc.dict.dz`` (gzip-compatible). About
  15,000 encyclopedic articles of real English, 5.3 MB after cleaning. Why it
  is a fair stand-in for WikiText: it is encyclopedia text written by people
  — titled articles of running prose with definitions, history and cross
  references, like WikiText's Wikipedia articles (also under a free
  documentation licence) — not a word list or synthetic text; it is smaller
  (5 MB against 500 MB) and about one field, computing, so its perplexities
  are not WikiText's. Articles are formatted as WikiText's are (`` = Title = ``
  then paragraphs), cross-reference braces removed, and split
  deterministically: every 20th article to valid, the next to test.
"""

from __future__ import annotations

import gzip
import pathlib
import re

from experiments.input_pipeline import DataError

FOLDOC = pathlib.Path("/usr/share/dictd/foldoc.dict.dz")
SPLITS = ("train", "valid", "test")
WIKITEXT_FILES = {"tokens": {s: f"wiki.{s}.tokens" for s in SPLITS},
                  "raw": {s: f"wiki.{s}.raw" for s in SPLITS}}


def wikitext103(directory) -> dict[str, str]:
  """{split: text} from a WikiText-103 release directory (tokens or raw files)."""
  where = (f"config.data_dir={str(directory)!r}: no WikiText-103 release there" if directory
           else "config.data_dir is not set: WikiText-103 cannot be downloaded here")
  directory = pathlib.Path(directory or ".").expanduser()
  for files in WIKITEXT_FILES.values():
    paths = {s: directory / name for s, name in files.items()}
    if all(p.is_file() for p in paths.values()):
      return {s: _read_text(p) for s, p in paths.items()}
  raise DataError(
      f"{where}. Expected the "
      "files wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens (the "
      "wikitext-103-v1 release) or wiki.train.raw, wiki.valid.raw and wiki.test.raw "
      "(wikitext-103-raw-v1), from the release of Merity et al. 2016 (e.g. the Hugging "
      "Face dataset 'Salesforce/wikitext', or the archive wikitext-103-v1.zip unpacked). "
      "Pass the directory with --config.data_dir=DIR, or run the offline FOLDOC preset: "
      "--config=experiments/configs/wikitext103.py:offline.")


def _read_text(path: pathlib.Path) -> str:
  """A split's text; an unreadable, empty or non-UTF-8 file raises DataError naming it."""
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not UTF-8 text at byte {e.start}; the file is damaged or not "
                    "a WikiText-103 release file") from None
  except OSError as e:
    raise DataError(f"{path}: cannot be read ({e.strerror})") from None
  if not text.strip():
    raise DataError(f"{path}: the file is empty; the WikiText-103 release is incomplete")
  return text


def foldoc_articles(path=FOLDOC) -> list[str]:
  """The articles of Debian's FOLDOC file, each `` = Title = `` and its paragraphs."""
  path = pathlib.Path(path)
  if not path.is_file():
    where = (f"FOLDOC is not installed ({FOLDOC} does not exist)" if path == FOLDOC else
             f"config.data_dir={str(path.parent)!r} is not allowed: it has no {path.name}")
    raise DataError(f"{where}. It comes from Debian's package dict-foldoc: apt-get install -y "
                    f"dict-foldoc (then {FOLDOC} exists), or pass --config.data_dir=DIR with "
                    f"{FOLDOC.name} in it.")
  try:
    text = gzip.open(path).read().decode("utf-8", errors="replace")
  except (OSError, EOFError, ValueError) as e:
    raise DataError(f"{path}: not a readable dictzip/gzip file ({e}); reinstall it with "
                    "apt-get install --reinstall dict-foldoc") from None
  articles = []
  for chunk in re.split(r"\n(?=\S)", text):
    lines = chunk.split("\n")
    body = [ln for ln in lines[1:] if ln.startswith((" ", "\t")) or not ln.strip()]
    title = lines[0].strip()
    if not title or title.startswith("00-database") or not any(b.strip() for b in body):
      continue
    prose = re.sub(r"[{}]", "", "\n".join(ln.strip() for ln in body)).strip()
    prose = re.sub(r"\n(?!\n)", " ", prose)  # the file's line breaks inside paragraphs
    articles.append(f" = {title.split('%%%')[0]} = \n\n{prose}\n")
  if len(articles) < 100:
    raise DataError(f"{path}: only {len(articles)} FOLDOC articles found; the file is "
                    "truncated or not FOLDOC")
  return articles


def foldoc(path=FOLDOC) -> dict[str, str]:
  """{split: text}: FOLDOC's articles, every 20th to valid, the one after it to test."""
  articles = foldoc_articles(path)
  split = {"train": [], "valid": [], "test": []}
  for i, article in enumerate(articles):
    split["valid" if i % 20 == 0 else "test" if i % 20 == 1 else "train"].append(article)
  return {s: "\n".join(parts) for s, parts in split.items()}


def corpus(name: str, data_dir=None) -> dict[str, str]:
  """{split: text} of ``config.dataset`` ``"wikitext103"`` or ``"foldoc"``."""
  if name == "wikitext103":
    return wikitext103(data_dir)
  return foldoc(pathlib.Path(data_dir) / FOLDOC.name if data_dir else FOLDOC)
