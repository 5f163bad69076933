"""The operator console under ``/console/``: server-rendered pages for the people Stepmail
serves (CS managers, CSMs, operators), mounted in the API by ``api.app.create_app``.

Pages work without JavaScript; ``static/console.js`` only adds conveniences. Every asset comes
from this package (no CDN) under a strict Content-Security-Policy; the UI speaks Japanese and
English (``locale/*/LC_MESSAGES/console.po``). Routes hold no SQL: they call
:mod:`orchestrator.services`.
"""
