#!/usr/bin/env python3
"""Executes a notebook headless (nbclient) against one results file.

    build/venv/bin/python scripts/run_notebook.py notebooks/explore.ipynb results/quickstart.h5 [OUT.ipynb]

The notebook reads the results path from $MOELAB_RESULTS. Exits non-zero when a cell fails.
"""
import os
import sys

import nbformat
from nbclient import NotebookClient


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    notebook, results = sys.argv[1], os.path.abspath(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else None
    os.environ["MOELAB_RESULTS"] = results
    os.environ.setdefault("MPLBACKEND", "Agg")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(results)}}).execute()
    if out:
        nbformat.write(nb, out)
    print(f"run_notebook: {notebook} ran against {results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
