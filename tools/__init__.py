"""Build tooling for the bilingual lessons: templates → catalogues → notebooks.

Kept outside the `federated` package so that learners installing the library never
pull in jupytext, Babel or papermill. Run it as `python -m tools <command>` from the
repository root; see tools/README.md.
"""
