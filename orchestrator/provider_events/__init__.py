"""What mail providers report after they took a mail (delivered, bounced, opened, …).

Each provider has one module that maps its own event names and fields onto one vocabulary
(:mod:`.vocabulary`); :mod:`.record` stores events idempotently and applies them to the
schedule and the suppression list, whoever reported them.
"""
