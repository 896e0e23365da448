enum PCortexCoreTests {}
