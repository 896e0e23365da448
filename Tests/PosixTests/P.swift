enum PPosixTests {}
