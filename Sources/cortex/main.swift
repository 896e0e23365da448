import CortexCLI

CortexMain.exit()
