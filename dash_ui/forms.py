"""Form helpers: every control gets a ``<label for=...>`` tied to it.

Dash renders a pattern-matching id (a dict) as its JSON with sorted keys and no spaces, so the label's
``htmlFor`` is that string. For ``dcc.Input`` the id is on the ``<input>`` itself; Dash 4's
``dcc.Dropdown`` puts its id on its trigger ``<button>`` (a labelable element), so a click on the label
focuses the control in both cases.
"""

from __future__ import annotations

import json

from dash import html


def dom_id(id_) -> str:
    """The DOM id Dash gives a component id (dict ids: sorted-key compact JSON)."""
    if isinstance(id_, dict):
        return json.dumps(id_, sort_keys=True, separators=(",", ":"))
    return str(id_)


def labelled(text: str, control, **style) -> html.Div:
    """``<div><label for=control.id id=<id>-label>text</label>control</div>``."""
    did = dom_id(control.id)
    lab = html.Label(text, htmlFor=did) if isinstance(control.id, dict) else html.Label(text, htmlFor=did,
                                                                                         id=f"{did}-label")
    return html.Div([lab, control], style=style or None)
