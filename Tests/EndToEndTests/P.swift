enum PEndToEndTests {}
