"""Package hygiene and the README's example."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_import_pulls_in_no_heavy_dependencies():
  code = ("import sys, dana_jax, dana_jax.models, dana_jax.data; "
          "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'matplotlib', "
          "'ml_collections', 'sklearn') if m in sys.modules]; print(heavy)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=ROOT)
  assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_readme_example_runs():
  readme = (ROOT / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
  example = [b for b in blocks if "# README example" in b]
  assert example, "the README has no block marked '# README example'"
  assert len(example[0].strip().splitlines()) <= 15  # the README's example stays 15 lines
  out = subprocess.run([sys.executable, "-c", example[0]], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "test error" in out.stdout


def test_readme_environment_example_runs():
  readme = (ROOT / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
  example = [b for b in blocks if "# README environment example" in b]
  assert example, "the README has no block marked '# README environment example'"
  out = subprocess.run([sys.executable, "-c", example[0]], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.count("goodput") == 2


def test_readme_own_loop_example_runs():
  readme = (ROOT / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
  example = [b for b in blocks if "# Your own asynchronous loop" in b]
  assert example, "the README has no block marked '# Your own asynchronous loop'"
  out = subprocess.run([sys.executable, "-c", example[0]], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]


def test_ruff_is_clean():
  import shutil

  import pytest

  ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
  if not pathlib.Path(ruff).exists():
    pytest.skip("ruff is not installed (pip install '.[test]')")
  out = subprocess.run([ruff, "check", "."], capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 0, out.stdout + out.stderr
