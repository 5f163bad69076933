"""The hand-off to a human: CSM tasks (one open per customer and kind) and the mail and Slack
post that tell a CSM about one."""
