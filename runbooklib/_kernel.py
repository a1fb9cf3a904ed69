"""Whether code runs inside a notebook kernel (JupyterLab, papermill), where output is rich."""

from __future__ import annotations


def in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
