// PluginHost: placeholder, filled in by its issue.
