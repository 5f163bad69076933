"""First-party click tracking: the links in a mail go through signed redirect links on
``PUBLIC_BASE_URL`` (``links``), each follow is recorded against its send (``clicks``), and
clicks that look like a mail-security scanner's are kept but flagged (``scanners``)."""
