"""Tests in a real browser (JupyterLab through Chromium); see harness.py."""
