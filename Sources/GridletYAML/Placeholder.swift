// GridletYAML
