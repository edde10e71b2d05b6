// Trajectory: placeholder, filled in by its issue.
