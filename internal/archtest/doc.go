// Package archtest holds no code: its test checks the import rules that
// keep the security model visible in the code (see DESIGN §1 and
// docs/architecture.md).
package archtest
