"""Health score as code: journeys/health.yaml defines it; recomputed when events arrive and
daily for the customers whose windows moved."""
