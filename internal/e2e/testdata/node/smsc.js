// An SMSC built on node-smpp for checking our ESME: it accepts one
// account, answers every submit_sm with a message id, and prints one JSON
// line per PDU it receives. The first line announces the port.
//
// usage: node smsc.js SYSTEM_ID PASSWORD
'use strict';
const smpp = require('smpp');
const [systemId, password] = process.argv.slice(2);
let next = 1;

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    const ok = pdu.system_id === systemId && pdu.password === password;
    emit({ pdu: 'bind_transceiver', system_id: pdu.system_id, ok });
    session.send(pdu.response({ command_status: ok ? 0 : smpp.ESME_RBINDFAIL, system_id: 'node-smsc' }));
    if (!ok) session.close();
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    const sm = pdu.short_message;
    const id = 'n' + (next++);
    emit({
      pdu: 'submit_sm', message_id: id,
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      destination_addr: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton,
      esm_class: pdu.esm_class, protocol_id: pdu.protocol_id, data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery, validity_period: pdu.validity_period ? String(pdu.validity_period) : '',
      udh: sm && sm.udh ? sm.udh.map((b) => b.toString('hex')) : [],
      message: sm && Buffer.isBuffer(sm.message) ? sm.message.toString('hex') : String(sm && sm.message),
    });
    session.send(pdu.response({ message_id: id }));
  });
});
server.listen(0, '127.0.0.1', () => emit({ port: server.address().port }));
