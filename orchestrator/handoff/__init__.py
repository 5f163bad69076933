"""The hand-off to a human: CSM tasks and how a CSM hears about them."""
