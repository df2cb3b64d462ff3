"""Help: what each screen's keys do (the Footer shows them too; this explains them)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from rcekd_core.runs.store import EVENTS, STDOUT

HELP = f"""\
# rcekd — keys

**Everywhere**: `?` this help · `ctrl+p` command palette · `ctrl+q` quit
(runs keep going: they are separate processes).

**Runs**: `↑/↓` move · `enter` open (live or finished) · `space` select ·
`c` compare selected · `e` export selection (or current run) as one tidy CSV ·
`n` new run · `r` resume an *interrupted* (killed, machine down), *stopped* or
*failed* run: `rcekd distill --resume` continues it detached (finished fits kept, the
interrupted fit from its last epoch) · `o` sort by the next column (or click a header;
again: reversed) · `/` filter on any column, tags and notes included (`escape` clears) ·
`a` tags and a note for the run (kept in its notes.yaml) · `f5` refresh. The status says
*diverged* when a fit of a finished run diverged (its rows are not results).

**Sweep** (`enter` on a sweep's row): trials done per method and the best validation score
so far; one tab per swept setting plotting the validation metric against its values, a
line per method (`rcekd sweep show` draws the same) · `t` the trial in flight · `b` back.

**Set-up**: `tab` next field · edit values (checked with the CLI's own validation;
the message appears under the form) · `ctrl+s` or *Start* launches
`rcekd distill` detached, writing `{STDOUT}` in the run dir · `escape` back.

**Live run**: `1`–`4` loss / validation / overlap / results · `s` stop gracefully
(after the current batch: the epoch so far is validated, the best weights evaluated and written) · `r` resume it when it is interrupted,
stopped or failed (in `rcekd watch` too) · `b` or `escape` leave it running.
Lines of `{EVENTS}` that cannot be read are skipped; the log says how many.

**Charts** (live run and compare): every method keeps one colour in every panel; the
legend line under the charts names them · `l` log y · `m` smoothing (EMA 0.6, 0.9, off)
· live run only: `x` x axis, epochs or minutes of training · `[` / `]` a cursor over the epochs (the exact
values at it in each chart's bottom border) · `\\` hide it.

**Compare**: `1`–`5` losses / validation / overlap / results side by side / differing
config keys; a method run on several seeds is its mean with a dotted ± std band · `e`
export · `escape` back.

Colours follow the terminal theme; with `NO_COLOR=1` each method draws with its own
marker character instead (rcekd ●, kd +, scratch ·, …).
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)
