"""The Colab notebooks run on CPU in their smoke setting (DANA_JAX_SMOKE=1), as committed."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def test_both_notebooks_are_shipped():
  assert {p.name for p in NOTEBOOKS} == {"quickstart.ipynb", "tpu_cifar10.ipynb"}
  for path in NOTEBOOKS:
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs"


@pytest.mark.slow  # a kernel per notebook; the cleared outputs are checked by default
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_setting(path, tmp_path, monkeypatch):
  notebook = nbformat.read(path, as_version=4)
  code = [c for c in notebook.cells if c.cell_type == "code"]
  assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs"
  monkeypatch.setenv("DANA_JAX_SMOKE", "1")
  monkeypatch.setenv("PYTHONPATH", str(ROOT))
  monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()  # a failing cell raises CellExecutionError
  outputs = [o for c in code for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  if path.stem == "quickstart":
    text = "".join(o.get("text", "") for o in outputs)
    assert "final test error" in text and "dana_ga" in text
  else:
    assert (tmp_path / "runs" / "cifar10_tpu" / "results.md").exists()
  assert any("image/png" in o.get("data", {}) for o in outputs)  # the figures
