// Package sms encodes and decodes the short-message layer that carries SIM
// OTA traffic: SMS-DELIVER and SMS-SUBMIT TPDUs and their user data header
// (3GPP TS 23.040 §9.2), the GSM 7-bit default alphabet and UCS-2 text
// coding (TS 23.038 §6), and the concatenation of secured command and
// response packets into several short messages as TS 31.115 §4 prescribes,
// including reassembly on the receiving side.
//
// The package works on raw octets only; the secured packet contents (CPL,
// headers, ciphering and checksums) belong to the OTA layer above it.
package sms
