// An ESME built on node-smpp: it binds to the SMSC under test, submits one
// binary SMS (esm_class 0x40, protocol_id 0x7F, data_coding 0xF6) and waits
// for the handset's MO reply, then prints one JSON line and exits.
//
// usage: node esme.js URL SYSTEM_ID PASSWORD SOURCE_ADDR DEST_ADDR TPUD_HEX [SEGMENTS_EXPECTED]
'use strict';
const smpp = require('smpp');
const [url, systemId, password, source, dest, tpudHex, want] = process.argv.slice(2);
const expected = parseInt(want || '1', 10);
const out = { bind_status: null, submit_status: null, message_id: null, mo: [], receipts: [] };
const session = smpp.connect({ url, auto_enquire_link_period: 10000 });
const timer = setTimeout(() => finish(2), 15000);

function hexUDH(sm) {
  return sm && sm.udh ? Buffer.concat(sm.udh).toString('hex') : '';
}

function finish(code) {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(out) + '\n');
  try { session.unbind(() => { session.close(); process.exit(code); }); } catch (e) { process.exit(code); }
  setTimeout(() => process.exit(code), 1000);
}

session.on('error', (e) => { out.error = String(e); finish(3); });
session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  const sm = pdu.short_message;
  const rec = {
    source_addr: pdu.source_addr, destination_addr: pdu.destination_addr,
    esm_class: pdu.esm_class, protocol_id: pdu.protocol_id, data_coding: pdu.data_coding,
    udh: hexUDH(sm), message: Buffer.isBuffer(sm.message) ? sm.message.toString('hex') : String(sm.message),
  };
  if (pdu.esm_class & 0x04) {
    out.receipts.push(rec);
  } else {
    out.mo.push(rec);
  }
  if (out.mo.length >= expected && out.receipts.length >= 1) finish(0);
});
session.bind_transceiver({ system_id: systemId, password }, (pdu) => {
  out.bind_status = pdu.command_status;
  if (pdu.command_status !== 0) return finish(1);
  session.submit_sm({
    source_addr_ton: 1, source_addr_npi: 1, source_addr: source,
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: dest,
    esm_class: 0x40, protocol_id: 0x7f, data_coding: 0xf6, registered_delivery: 1,
    short_message: Buffer.from(tpudHex, 'hex'),
  }, (resp) => {
    out.submit_status = resp.command_status;
    out.message_id = resp.message_id;
    if (resp.command_status !== 0) finish(1);
  });
});
