"""The owner's page: a server-rendered view of the activity log, signed in with a key, for people, not machines."""
