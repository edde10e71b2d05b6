// Alanine: placeholder, filled in by its issue.
