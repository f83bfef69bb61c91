// Package e2e holds the tests that wire the real components together over
// real protocols: the Messaging Server binds over SMPP on loopback TCP to
// the SMSC simulator, which reaches virtual handsets whose SIMs answer
// OTA-secured VMAC commands. It also checks our SMPP against an
// implementation we did not write (node-smpp). It has no code of its own.
package e2e
