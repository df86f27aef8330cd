"""The tasks plugin: tasks, reminders, recurrence, SLA timers and automations."""
