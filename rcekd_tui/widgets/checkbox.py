"""A checkbox whose mark is a character, not only a colour: readable under NO_COLOR."""

from __future__ import annotations

from textual.widgets import Checkbox


class MarkCheckbox(Checkbox):
    @property
    def _button(self):
        self.BUTTON_INNER = "X" if self.value else " "
        return super()._button
