"""The one CSS rule the lesson widgets carry: no "disconnected" mark on a saved view.

ipywidgets marks every view whose kernel connection is not live with a red broken-chain
icon (`.jupyter-widgets-disconnected::before`). A lesson opened before its kernel has
started shows its saved dashboards that way, as if they were broken, although they show
exactly what the committed run drew. The rule travels inside each widget's title (a
`<style>` element in an HTML widget), so it is part of the saved state and works in
JupyterLab and in exported HTML alike; it only touches our widgets (class `fl-widget`).
"""

from __future__ import annotations

import ipywidgets as widgets

#: the class every lesson widget has, so the rule below touches nothing else
CLASS = "fl-widget"
STYLE = (
    "<style>.fl-widget.jupyter-widgets-disconnected::before,"
    ".fl-widget .jupyter-widgets-disconnected::before{display:none}</style>"
)


def mark(widget: widgets.DOMWidget, kind: str) -> None:
    """Give a lesson widget its own class (`fl-dashboard`) and the shared one."""
    widget.add_class(kind)
    widget.add_class(CLASS)
