"""The MLHub cleanup service (removes expired and orphaned workspaces). Built in a later issue."""
