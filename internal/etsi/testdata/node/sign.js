// Asks an MSSP for a mobile signature through its ETSI TS 102 204 SOAP
// interface, using node-soap on the MSSP's own WSDL: MSS_Signature in
// asynchClientServer mode, then MSS_StatusQuery until the transaction is no
// longer outstanding (504).
//
// Usage: node sign.js BASE_URL AP_ID AP_PWD MSISDN DTBS
//
// Each argument may instead come from the environment (MSS_BASE_URL,
// MSS_AP_ID, MSS_AP_PWD, MSS_MSISDN, MSS_DTBS). The WSDL is read from
// BASE_URL/soap/services/MSS_SignaturePort?wsdl. Optional settings:
//
//   MSS_MSSP_ID            MSSP_ID URI (default BASE_URL)
//   MSS_SIGNATURE_PROFILE  SignatureProfile URI
//   MSS_USER_LANG          adds the userLang additional service
//   MSS_TIMEOUT            TimeOut in seconds (default 80)
//   MSS_FIRST_POLL_MS      wait before the first status query (default 10000)
//   MSS_POLL_INTERVAL_MS   wait between status queries (default 5000)
//   MSS_MAX_POLLS          status queries before giving up (default 30)
//   MSS_TLS_CA, MSS_TLS_CERT, MSS_TLS_KEY
//                          PEM files: the MSSP's CA, and the AP's client
//                          certificate and key for mutual TLS
//
// It prints one JSON object on stdout: {"statusCode":502,"statusMessage":…,
// "msspTransID":…,"apTransID":…,"polls":2,"signature":"<base64>"} and exits
// 0 when the final status is 500 or 502; on a SOAP fault or other failure
// it prints {"error":…,"fault":{…}} and exits 1, and 2 when the MSSP is
// still outstanding after MSS_MAX_POLLS queries.
'use strict';

const fs = require('fs');
const https = require('https');
const crypto = require('crypto');
const soap = require('soap');

const OUTSTANDING = 504;
const FINAL_OK = [500, 502];

function setting(index, name) {
  const v = process.argv[2 + index] || process.env[name];
  if (!v) {
    throw new Error(`missing argument ${index + 1} (or ${name})`);
  }
  return v;
}

function intEnv(name, def) {
  const v = process.env[name];
  return v === undefined || v === '' ? def : parseInt(v, 10);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// An AP_TransID is an NCName of at most 32 characters.
function transID() {
  return 'T' + Date.now().toString(36) + crypto.randomBytes(6).toString('hex');
}

function header(cfg) {
  return {
    AP_Info: {
      attributes: {
        AP_ID: cfg.apID,
        AP_TransID: transID(),
        AP_PWD: cfg.apPWD,
        Instant: new Date().toISOString(),
      },
    },
    MSSP_Info: { MSSP_ID: { URI: cfg.msspID } },
  };
}

function attr(obj, name) {
  return obj && obj.attributes ? obj.attributes[name] : undefined;
}

// status returns the StatusCode Value and StatusMessage of a response.
function status(resp) {
  const s = resp && resp.Status;
  return { code: Number(attr(s && s.StatusCode, 'Value')), message: s && s.StatusMessage };
}

// faultOf extracts a SOAP 1.2 fault from a node-soap error.
function faultOf(err) {
  const body = err && err.root && err.root.Envelope && err.root.Envelope.Body;
  const f = body && body.Fault;
  if (!f) {
    return undefined;
  }
  const text = (v) => (v && typeof v === 'object' && '$value' in v ? v.$value : v);
  const sub = f.Code && f.Code.Subcode;
  return {
    code: text(f.Code && f.Code.Value),
    subcode: text(sub && sub.Value),
    detailSubcode: text(sub && sub.Subcode && sub.Subcode.Value),
    reason: text(f.Reason && f.Reason.Text),
    detail: f.Detail && (f.Detail.StatusDetail !== undefined ? text(f.Detail.StatusDetail) : f.Detail),
  };
}

async function main() {
  const baseURL = setting(0, 'MSS_BASE_URL').replace(/\/$/, '');
  const cfg = {
    apID: setting(1, 'MSS_AP_ID'),
    apPWD: setting(2, 'MSS_AP_PWD'),
    msisdn: setting(3, 'MSS_MSISDN'),
    dtbs: setting(4, 'MSS_DTBS'),
    msspID: process.env.MSS_MSSP_ID || baseURL,
  };
  const firstPoll = intEnv('MSS_FIRST_POLL_MS', 10000);
  const interval = intEnv('MSS_POLL_INTERVAL_MS', 5000);
  const maxPolls = intEnv('MSS_MAX_POLLS', 30);

  const httpOptions = {};
  if (process.env.MSS_TLS_CA || process.env.MSS_TLS_CERT) {
    const read = (name) => (process.env[name] ? fs.readFileSync(process.env[name]) : undefined);
    httpOptions.httpsAgent = new https.Agent({
      ca: read('MSS_TLS_CA'),
      cert: read('MSS_TLS_CERT'),
      key: read('MSS_TLS_KEY'),
      keepAlive: true,
    });
  }

  const client = await soap.createClientAsync(baseURL + '/soap/services/MSS_SignaturePort?wsdl', {
    forceSoap12Headers: true,
    wsdl_options: httpOptions,
  });

  const req = {
    attributes: {
      MajorVersion: '1',
      MinorVersion: '1',
      MessagingMode: 'asynchClientServer',
      TimeOut: String(intEnv('MSS_TIMEOUT', 80)),
    },
    ...header(cfg),
    MobileUser: { MSISDN: cfg.msisdn },
    DataToBeSigned: { attributes: { MimeType: 'text/plain', Encoding: 'UTF-8' }, $value: cfg.dtbs },
  };
  if (process.env.MSS_SIGNATURE_PROFILE) {
    req.SignatureProfile = { mssURI: process.env.MSS_SIGNATURE_PROFILE };
  }
  if (process.env.MSS_USER_LANG) {
    req.AdditionalServices = {
      Service: [{ Description: { mssURI: 'http://mss.ficom.fi/TS102204/v1.0.0#userLang' }, UserLang: process.env.MSS_USER_LANG }],
    };
  }

  const [sigResult] = await client.MSS_SignatureAsync({ MSS_SignatureReq: req }, httpOptions);
  const sigResp = sigResult && sigResult.MSS_SignatureResp;
  const msspTransID = attr(sigResp, 'MSSP_TransID');
  if (!msspTransID) {
    throw new Error('MSS_SignatureResp without MSSP_TransID');
  }
  let st = status(sigResp);
  let last = sigResp;
  let polls = 0;
  if (st.code === 100 || st.code === OUTSTANDING) {
    await sleep(firstPoll);
    for (;;) {
      polls++;
      const statusReq = {
        attributes: { MajorVersion: '1', MinorVersion: '1', MSSP_TransID: msspTransID },
        ...header(cfg),
      };
      const [result] = await client.MSS_StatusQueryAsync({ MSS_StatusReq: statusReq }, httpOptions);
      last = result && result.MSS_StatusResp;
      st = status(last);
      if (st.code !== OUTSTANDING) {
        break;
      }
      if (polls >= maxPolls) {
        console.log(JSON.stringify({ error: `still outstanding after ${polls} status queries`, msspTransID, polls }));
        return 2;
      }
      await sleep(interval);
    }
  }
  const sig = last && last.MSS_Signature;
  const out = {
    statusCode: st.code,
    statusMessage: st.message,
    msspTransID,
    apTransID: attr(req.AP_Info, 'AP_TransID'),
    polls,
    signature: sig && sig.Base64Signature,
  };
  console.log(JSON.stringify(out));
  return FINAL_OK.includes(st.code) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.log(JSON.stringify({ error: err.message, fault: faultOf(err) }));
    process.exit(1);
  },
);
