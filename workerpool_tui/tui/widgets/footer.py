"""The key footer, updated in place when only its words change.

Textual's ``Footer`` rebuilds all its keys (about 20 widgets: mounted, styled, laid out)
whenever the screen's bindings may have changed. Pausing swaps one word (Pause for
Resume, the same key in the same place), and that rebuild cost the dashboard 159 ms of
CPU a toggle, 75 ms even with nothing changed (``refresh_bindings`` to a settled screen,
median of 20; 35 ms a toggle with this footer): a key pressed next waited for it. This
footer compares what it would show with what it shows; when only the keys' words,
actions or enabled state differ, it changes those keys in place (one footer layout);
otherwise (another screen's keys, a group, a different number) it rebuilds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen

Shown = tuple[str, str, str, str, bool, str]
"""What one key shows: key, its display, description, action, disabled, tooltip."""


class Footer(TextualFooter):
    """Textual's footer, with :meth:`bindings_changed` updating its keys in place."""

    def bindings_changed(self, screen: Screen[object]) -> None:
        if (
            self._bindings_ready
            and screen.app.app_focus
            and self.is_attached
            and screen is self.screen
            and self._update_in_place()
        ):
            return
        super().bindings_changed(screen)

    def _wanted(self) -> list[Shown] | None:
        """The keys compose would yield, or ``None`` when they come in groups."""
        by_action: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                if binding.group is not None:
                    return None
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        return [
            (
                b.key,
                self.app.get_key_display(b),
                b.description,
                b.action,
                not enabled,
                tooltip,
            )
            for b, enabled, tooltip in by_action.values()
        ]

    def _update_in_place(self) -> bool:
        """Change the keys' words in place; ``False`` when the footer must be rebuilt."""
        wanted = self._wanted()
        if wanted is None or not all(isinstance(c, FooterKey) for c in self.children):
            return False
        keys = [k for k in self.query_children(FooterKey) if not k.has_class("-command-palette")]
        palette = len(self.children) - len(keys)
        wants_palette = (
            self.show_command_palette
            and self.app.ENABLE_COMMAND_PALETTE
            and self.app.COMMAND_PALETTE_BINDING in self.screen.active_bindings
        )
        if len(wanted) != len(keys) or palette != int(wants_palette):
            return False
        for key, shown in zip(keys, wanted, strict=True):
            name, display, description, action, disabled, tooltip = shown
            if (key.key, key.key_display, key.description, key.action, key._disabled) == (
                shown[:5]
            ):
                continue
            key.key, key.key_display, key.description, key.action = (
                name,
                display,
                description,
                action,
            )
            key._disabled = disabled
            key.set_class(disabled, "-disabled")
            key.tooltip = tooltip or None
            key.refresh(layout=True)
        return True
