"""Small tools for people trying Stepmail locally."""
