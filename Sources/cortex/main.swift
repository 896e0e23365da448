import CortexCLI

CortexMain.exit(with: CommandLine.arguments)
