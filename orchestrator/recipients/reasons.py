"""Why an address is on the suppression list (``suppression.reason``). Only an unsubscribe is
undone by the recipient (a resubscribe); the others are lifted by an operator, if at all."""

UNSUBSCRIBE = "unsubscribe"
HARD_BOUNCE = "bounce"
SOFT_BOUNCES = "soft-bounce"
SPAM_REPORT = "spam-report"
INVALID = "invalid"
MANUAL = "manual"
