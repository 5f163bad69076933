"""Stepmail: step-mail onboarding journeys, compiled into a durable schedule and sent by tier."""
