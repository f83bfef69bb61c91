// Uses a MID REST service as a relying party does with the Mobile-ID
// client of undersign (lib/mobile_id.js), which only needs the service's
// base URL and the RP's name and UUID:
//
//  1. authentication: a random challenge, its SHA-256 sent as the hash,
//     the verification code shown to the user, the status polled until the
//     user answers, then the signature checked over the challenge with the
//     returned certificate, and that certificate against the issuing CA;
//     the issuer is checked both with the library's Certificate#hasIssued
//     and with node's own X509Certificate, because the library re-encodes
//     the certificate it decoded and so cannot check one whose policy OID
//     has an arc above 2^53, such as a UUID under 2.25;
//  2. the person's signing certificate (POST /certificate);
//  3. a signature over the SHA-256 of a document, checked with it;
//  4. an authentication for a national ID that is not the number's
//     holder, which must end in the client's NOT_MID_CLIENT error.
//
// Usage: node midclient.js BASE_URL
//
// Settings come from the environment: MID_RP_NAME, MID_RP_UUID, MID_PHONE,
// MID_NATIONAL_ID, MID_OTHER_NATIONAL_ID, and MID_ISSUER (a PEM file of
// the CA certificate that issues the users' certificates).
//
// It prints one JSON object on stdout and exits 0, or prints
// {"error":…,"step":…} and exits 1.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const MobileId = require('undersign/lib/mobile_id');
const Certificate = require('undersign/lib/certificate');

const env = (name) => {
	const v = process.env[name];
	if (!v) throw new Error(name + ' is not set');
	return v;
};

const sha256 = (data) => crypto.createHash('sha256').update(data).digest();

// verificationCode is what the RP shows next to its login button.
const verificationCode = (hash) => String(MobileId.confirmation(hash)).padStart(4, '0');

// issuedBy checks a certificate the client returned against the issuing
// CA with node's crypto, on the certificate's own bytes.
const issuedBy = (issuerPEM, der) => {
	const issuer = new crypto.X509Certificate(issuerPEM);
	const cert = new crypto.X509Certificate(der);
	return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
};

// rawCertificate reads a certificate's bytes as the service sent them,
// with the client's own transport, from a finished session's status or,
// with body, from POST /certificate.
async function rawCertificate(mid, path, body) {
	const res = await mid.request(path, body ? {method: 'POST', json: body} : {});
	return Buffer.from(res.body.cert, 'base64');
}

// step is the step main is in, for the error report.
let step = 'start';

// poll long-polls a session until the client returns a final answer; the
// client returns null while the session is RUNNING.
async function poll(wait, sessionId) {
	for (let i = 0; i < 20; i++) {
		const res = await wait(sessionId, 5);
		if (res != null) return res;
	}
	throw new Error('session ' + sessionId + ' is still running');
}

async function main() {
	const baseURL = process.argv[2];
	if (!baseURL) throw new Error('usage: node midclient.js BASE_URL');
	const mid = new MobileId(baseURL, {user: env('MID_RP_NAME'), password: env('MID_RP_UUID')});
	const phone = env('MID_PHONE');
	const id = env('MID_NATIONAL_ID');
	const issuerPEM = fs.readFileSync(env('MID_ISSUER'), 'utf8');
	const issuer = new Certificate(new crypto.X509Certificate(issuerPEM).raw);
	const out = {};

	step = 'authentication';
	const challenge = crypto.randomBytes(32);
	const authHash = sha256(challenge);
	const authSession = await mid.authenticate(phone, id, authHash, {language: 'ENG', displayText: 'Log in?'});
	const [authCert, authSig] = await poll(mid.waitForAuthentication.bind(mid), authSession);
	out.authentication = {
		sessionID: authSession,
		verificationCode: verificationCode(authHash),
		serial: authCert.serialNumber.toString(16),
		subject: authCert.subjectRfc4514Name,
		signed: authCert.hasSigned(challenge, authSig),
		issued: issuedBy(issuerPEM, await rawCertificate(mid, 'authentication/session/' + authSession)),
		libraryIssued: issuer.hasIssued(authCert),
	};

	step = 'certificate';
	const signCert = await mid.readCertificate(phone, id);
	out.certificate = {
		serial: signCert.serialNumber.toString(16),
		issued: issuedBy(issuerPEM, await rawCertificate(mid, 'certificate', {phoneNumber: phone, nationalIdentityNumber: id})),
		libraryIssued: issuer.hasIssued(signCert),
	};

	step = 'signature';
	const document = Buffer.from('Loan contract no. 42, signed ' + new Date().toISOString());
	const signHash = sha256(document);
	const signSession = await mid.sign(phone, id, signHash, {language: 'ENG', displayText: 'Sign the loan contract'});
	const signature = await poll(mid.waitForSignature.bind(mid), signSession);
	out.signature = {
		sessionID: signSession,
		verificationCode: verificationCode(signHash),
		value: signature.toString('base64'),
		signed: signCert.hasSigned(document, signature),
	};

	step = 'not a MID client';
	const otherSession = await mid.authenticate(phone, env('MID_OTHER_NATIONAL_ID'), sha256(crypto.randomBytes(32)), {language: 'ENG'});
	try {
		await poll(mid.waitForAuthentication.bind(mid), otherSession);
		out.notMIDClient = {error: 'the authentication succeeded'};
	} catch (err) {
		if (!(err instanceof MobileId.MobileIdError)) throw err;
		out.notMIDClient = {code: err.code, message: err.message};
	}
	return out;
}

main().then(
	(out) => { process.stdout.write(JSON.stringify(out) + '\n'); },
	(err) => {
		process.stdout.write(JSON.stringify({error: String(err && err.stack || err), code: err && err.code, step}) + '\n');
		process.exitCode = 1;
	},
);
