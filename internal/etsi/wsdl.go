package etsi

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"strings"
)

// wsdlTemplate is the service description with placeholder addresses
// under wsdlPlaceholder.
//
//go:embed wsdl/mobileid.wsdl
var wsdlTemplate []byte

const wsdlPlaceholder = `location="https://mssp.invalid/soap/services/`

// WSDL returns the WSDL 1.1 description of the MSSP's SOAP 1.2 interface
// (one self-contained file, schema included), with the soap12:address of
// every port set to baseURL + "/soap/services/<Port>". baseURL is the
// scheme and host as clients reach them, e.g. "https://mssp.example.com";
// a trailing slash is ignored.
func WSDL(baseURL string) []byte {
	var loc bytes.Buffer
	loc.WriteString(`location="`)
	// Escaping keeps a hostile Host header from breaking out of the
	// attribute when callers derive baseURL from the request.
	_ = xml.EscapeText(&loc, []byte(strings.TrimSuffix(baseURL, "/")+"/soap/services/"))
	return bytes.ReplaceAll(wsdlTemplate, []byte(wsdlPlaceholder), loc.Bytes())
}
