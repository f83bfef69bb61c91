// Package ops is the operations console: a read-only web view and JSON API
// of a running platform, for the people who operate it. It shows the
// Signature Server's latest transactions with the time of each step, the
// SMS traffic through the SMSC with every segment decoded (user data
// header, the clear header of OTA secured packets, delivery receipts,
// text), the certificates the CA issued with their status, and the main
// figures of the parts' Prometheus registries.
//
// The console knows the parts only through the small interfaces it
// defines here (Transactions, Certificates, TrafficLog) and
// prometheus.Gatherer; the assembly of the platform adapts each part to
// them. It imports the codecs it decodes with (internal/ota, internal/sms)
// and the shared web assets, and nothing else of the platform.
//
// What it never shows: keys (it has none; OTA secured packets are decoded
// from their clear header only, and the ciphered part is given as a
// length), the data of a secured packet even when it travels in clear, and
// what a request carries to be signed. PINs never reach the operator's
// side at all.
//
// The SMS traffic comes from a Recorder, which the SMSC's tap feeds
// without ever blocking: records go through a buffered channel to one
// goroutine that decodes them into a ring of the latest ones, and are
// dropped (and counted) when that goroutine lags.
package ops
