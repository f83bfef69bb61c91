#!/usr/bin/env bash
# mobileid-sign.sh asks an MSSP for a mobile signature the way the shell
# clients written for Swisscom Mobile ID and Kiuru do: a hand-written
# SOAP 1.2 MSS_Signature request (synch, PKCS7) posted with curl over
# mutual TLS, the response picked apart with sed, and the signature
# checked with openssl cms.
#
# Usage: mobileid-sign.sh URL AP_ID MSISDN MESSAGE [USERLANG]
#
# URL is the MSSP's base URL (https://host:port). The AP password is read
# from the environment variable AP_PWD, so that it does not show in the
# process list. The files live in the directory MID_DIR (default: the
# current directory):
#
#   mycert.crt  the AP's client certificate (PEM)
#   mycert.key  its private key (PEM)
#   tls-ca.crt  the CA of the MSSP's TLS server certificate (PEM)
#   root.crt    the root the signer's certificate must chain to (PEM)
#
# Working files (req.xml, rsp.xml, status, sig.base64, sig.der) are left
# in MID_DIR. On stdout and stderr the script passes on exactly what
# "openssl cms -verify" prints: the signed text and its verdict.
#
# Exit status: 0 when the MSSP answered 500 or 502 and the signature
# verifies, 1 on any other status or a signature that does not verify,
# 2 when the request failed (curl error, HTTP status other than 200).

set -u

error() {
  echo "mobileid-sign.sh: $*" >&2
  exit "${2:-1}"
}

[ $# -ge 4 ] || error "usage: $0 URL AP_ID MSISDN MESSAGE [USERLANG]" 2
[ -n "${AP_PWD:-}" ] || error "AP_PWD is not set" 2
for cmd in curl sed base64 openssl date; do
  command -v "$cmd" > /dev/null 2>&1 || error "dependency '$cmd' not found" 2
done

URL=${1%/}
AP_ID=$2
SEND_TO=$3
SEND_MSG=$4
USERLANG=${5:-en}
DIR=${MID_DIR:-.}
TIMEOUT=80
TIMEOUT_CON=90

CERT_FILE=$DIR/mycert.crt
CERT_KEY=$DIR/mycert.key
CERT_CA=$DIR/tls-ca.crt
SIG_CA=$DIR/root.crt
for f in "$CERT_FILE" "$CERT_KEY" "$CERT_CA" "$SIG_CA"; do
  [ -r "$f" ] || error "$f missing or not readable" 2
done

# The text goes into XML as character data.
xml_escape() {
  printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
}

AP_INSTANT=$(date +%Y-%m-%dT%H:%M:%S%:z)
AP_TRANSID=AP.TEST.$(date +%s).$RANDOM$RANDOM

cat > "$DIR/req.xml" <<End
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://www.w3.org/2003/05/soap-envelope"
    xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"
    xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#">
  <soapenv:Body>
    <mss:MSS_Signature>
      <mss:MSS_SignatureReq MajorVersion="1" MinorVersion="1" MessagingMode="synch" TimeOut="$TIMEOUT">
        <mss:AP_Info AP_ID="$AP_ID" AP_PWD="$AP_PWD" AP_TransID="$AP_TRANSID" Instant="$AP_INSTANT"/>
        <mss:MSSP_Info>
          <mss:MSSP_ID>
            <mss:URI>http://mobileid.dev/mssp</mss:URI>
          </mss:MSSP_ID>
        </mss:MSSP_Info>
        <mss:MobileUser>
          <mss:MSISDN>$SEND_TO</mss:MSISDN>
        </mss:MobileUser>
        <mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">$(xml_escape "$SEND_MSG")</mss:DataToBeSigned>
        <mss:SignatureProfile>
          <mss:mssURI>http://mid.swisscom.ch/MID/v1/AuthProfile1</mss:mssURI>
        </mss:SignatureProfile>
        <mss:AdditionalServices>
          <mss:Service>
            <mss:Description>
              <mss:mssURI>http://mss.ficom.fi/TS102204/v1.0.0#userLang</mss:mssURI>
            </mss:Description>
            <fi:UserLang>$USERLANG</fi:UserLang>
          </mss:Service>
        </mss:AdditionalServices>
        <mss:MSS_Format>
          <mss:mssURI>http://uri.etsi.org/TS102204/v1.1.2#PKCS7</mss:mssURI>
        </mss:MSS_Format>
      </mss:MSS_SignatureReq>
    </mss:MSS_Signature>
  </soapenv:Body>
</soapenv:Envelope>
End

http_code=$(curl --silent --show-error --write-out '%{http_code}' \
    --data @"$DIR/req.xml" \
    -H 'Content-Type: application/soap+xml' \
    --cert "$CERT_FILE" --key "$CERT_KEY" --cacert "$CERT_CA" \
    --output "$DIR/rsp.xml" \
    --connect-timeout "$TIMEOUT_CON" --max-time $((TIMEOUT + 10)) \
    "$URL/soap/services/MSS_SignaturePort")
RC=$?
if [ "$RC" != 0 ] || [ "$http_code" != 200 ]; then
  if [ -s "$DIR/rsp.xml" ]; then
    RES_VALUE=$(sed -n -e 's/.*<env:Code><env:Value>[^<]*<\/env:Value><env:Subcode><env:Value>\([^<]*\)<.*/\1/p' "$DIR/rsp.xml")
    RES_REASON=$(sed -n -e 's/.*<env:Text[^>]*>\([^<]*\)<\/env:Text>.*/\1/p' "$DIR/rsp.xml")
    echo "mobileid-sign.sh: fault $RES_VALUE ($RES_REASON)" >&2
  fi
  error "request failed: curl exit $RC, HTTP status $http_code" 2
fi

# The same patterns as the field scripts: the response is one line.
RES_TRANSID=$(sed -n -e 's/.*AP_TransID="\(.*\)" AP_.*/\1/p' "$DIR/rsp.xml")
RES_MSISDN=$(sed -n -e 's/.*<mss:MSISDN>\(.*\)<\/mss:MSISDN>.*/\1/p' "$DIR/rsp.xml")
RES_RC=$(sed -n -e 's/.*<mss:StatusCode Value="\(.*\)"\/>.*/\1/p' "$DIR/rsp.xml")
sed -n -e 's/.*<mss:Base64Signature>\(.*\)<\/mss:Base64Signature>.*/\1/p' "$DIR/rsp.xml" > "$DIR/sig.base64"
echo "$RES_RC" > "$DIR/status"

[ "$RES_TRANSID" = "$AP_TRANSID" ] || error "AP_TransID '$RES_TRANSID' in the response, '$AP_TRANSID' in the request"
[ "$RES_MSISDN" = "$SEND_TO" ] || error "MSISDN '$RES_MSISDN' in the response, '$SEND_TO' in the request"
case "$RES_RC" in
  500 | 502) ;;
  *) error "status code '$RES_RC'" ;;
esac
[ -s "$DIR/sig.base64" ] || error "no Base64Signature found"
base64 -d "$DIR/sig.base64" > "$DIR/sig.der" || error "cannot decode Base64Signature"
[ -s "$DIR/sig.der" ] || error "empty signature"

# By default openssl checks the signer for the S/MIME signing purpose,
# which fails ("unsuitable certificate purpose") on an authentication
# certificate: its extended key usage is clientAuth only. The chain to
# the root and the signature are what is checked here.
openssl cms -verify -inform der -in "$DIR/sig.der" -CAfile "$SIG_CA" -purpose any || exit 1
