"""The footer every step shows: Textual's compact footer, plus the step's keys while a text field is focused.

Textual drops a key from the footer while a focused field would take it as text, so with the cursor in a
field the footer shrank to `^p palette` and the way on disappeared. Here those keys stay listed, dimmed
(they type into the field now), after `esc`, which leaves the field and makes them work again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # the footer's own key widget (no public name in Textual 8)

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.binding import Binding
    from textual.dom import DOMNode


class StepFooter(Footer):
    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        screen = self.screen
        active = screen.active_bindings
        focused = screen.focused
        typing = focused is not None and focused.check_consume_key("a", "a")
        keys: list[tuple[Binding, bool, str]] = []
        actions: set[str] = set()
        if typing:
            # The way out first, then every key of the step and the app as it is declared.
            keys += [(b.binding, b.enabled, b.tooltip) for b in active.values() if b.binding.action == "leave_field"]
            actions.add("leave_field")
            namespaces: list[DOMNode] = [screen, self.app]
            for namespace in namespaces:
                for key, bindings in namespace._bindings.key_to_bindings.items():
                    for binding in bindings:
                        if not binding.show or binding.action in actions:
                            continue
                        # False hides an action on this screen; None greys it; both as the plain footer does.
                        state = self.app._check_action_state(binding.action, namespace)
                        if state is False:
                            continue
                        current = active.get(key)
                        enabled = current is not None and current.binding is binding and current.enabled
                        keys.append((binding, enabled, binding.tooltip))
                        actions.add(binding.action)
        for entry in active.values():
            if entry.binding.show and entry.binding.action not in actions:
                keys.append((entry.binding, entry.enabled, entry.tooltip))
                actions.add(entry.binding.action)
        for binding, enabled, tooltip in keys:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                binding = palette.binding
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                                classes="-command-palette", disabled=not palette.enabled,
                                tooltip=binding.tooltip or binding.description)
