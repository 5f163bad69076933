"""Use cases: one function per thing a caller asks of Stepmail, and each owns its transaction.

Routes (``api/``), commands (``cli/``), processes, the simulator (``tools/``) and the worker
call these and nothing below them that touches the store; ``make layers`` checks it.

How to add a use case (a console page, a new API route, a command):

1. Put it in the module of its family (``tasks``, ``events``…) or a new module here, as a
   function ``verb_noun(engine, what_it_acts_on, *, rules…, clock…, notify…) -> plain data``.
   It takes the ``Engine`` first and, keyword-only, exactly the values it needs: a small
   frozen ``*Rules`` dataclass for settings (defined beside the code it configures, built by
   :class:`orchestrator.runtime.Runtime`), a ``Clock`` (read ``clock.now()`` once, inside the
   transaction), a ``TaskNotifier`` when it can open CSM tasks. Never the ``Runtime`` or the
   ``Settings``.
2. Open the transaction here (``with Session(engine) as s, s.begin():`` or ``engine.begin()``;
   a read is ``engine.connect()``) and call the capability packages inside it: their functions
   take a ``Connection``/``Session`` and never commit. Side effects outside the database (a
   mail, a notification) come after the commit.
3. Raise a :mod:`orchestrator.errors` class (or add one there with its ``http_status`` and
   ``exit_code``): the API and the CLI each have one handler, so the adapter needs no
   try/except.
4. Call it from the adapter in one line (a route runs it with ``run_in_threadpool``), test it
   in ``tests/services/`` on both databases (the ``runtime`` fixture), and add it to the
   table in docs/architecture.md ("Who owns which transaction").
"""
