"""What recipients asked for: the suppression list, topic preferences, consent records, the
signed unsubscribe links and what the unsubscribe page shows. Checked at send time."""
