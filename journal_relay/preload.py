"""What the back process's forkserver loads once, before it forks any back process: the back process's
modules and the built-in lexicon and statistical model, which take seconds to build. Every back process
forked from it (at start, and after a crash) then begins with them built.

Imported only by that forkserver (see runner.BackProcess); building at import is this module's one job.
"""

from journal_relay import runner  # noqa: F401  (the back process's own modules)
from journal_relay.score import load_model
from journal_relay.screen import load_lexicon

try:
    load_lexicon()
    load_model()
except Exception:  # noqa: BLE001, S110 - the back process builds them again itself and reports what is wrong
    pass
