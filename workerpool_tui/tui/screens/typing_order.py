"""Keys in a form applied in the order they were typed.

A field's own Tab, Backspace and Delete act only once the key has bubbled up to the app,
after the characters typed right behind it were already inserted: a burst such as
``Tab 3 4 5`` would land in the old field. Bound with priority on the form's screen,
they act as the key arrives (issue #10: four Tabs, Backspace, ``345`` puts ``345`` in
Count).
"""

from __future__ import annotations

from typing import cast

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, TextArea

ORDERED_TYPING: list[BindingType] = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    Binding("backspace", "edit('delete_left')", show=False, priority=True),
    Binding("delete", "edit('delete_right')", show=False, priority=True),
]


class OrderedTyping:
    """The ``edit`` action of :data:`ORDERED_TYPING`, mixed into a form's screen (first
    among its bases)."""

    async def action_edit(self, action: str) -> None:
        """Backspace and Delete applied in the order typed."""
        focused = cast("Screen[object]", self).focused
        if isinstance(focused, (Input, TextArea)):
            # Through the field's own queue: behind the characters already sent to it,
            # ahead of those typed after.
            focused.call_later(focused.run_action, action)
