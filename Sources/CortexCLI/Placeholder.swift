enum PlaceholderCortexCLI {}
