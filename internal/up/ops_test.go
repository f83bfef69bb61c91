package up

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mobileid/internal/handset"
	"mobileid/internal/simfactory"
)

// opsTx is a transaction as the console's API gives it.
type opsTx struct {
	TransID string    `json:"trans_id"`
	APID    string    `json:"ap_id"`
	Kind    string    `json:"kind"`
	MSISDN  string    `json:"msisdn"`
	State   string    `json:"state"`
	Status  int       `json:"status"`
	Counter uint64    `json:"counter"`
	TAR     string    `json:"tar"`
	Steps   []opsStep `json:"steps"`
	SMS     []opsSMS  `json:"sms"`
}

type opsStep struct {
	Step      string  `json:"step"`
	At        string  `json:"at"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

func (t *opsTx) step(name string) int {
	return slices.IndexFunc(t.Steps, func(s opsStep) bool { return s.Step == name })
}

type opsSMS struct {
	Direction    string `json:"direction"`
	MSISDN       string `json:"msisdn"`
	MessageID    string `json:"message_id"`
	Kind         string `json:"kind"`
	ReceiptState string `json:"receipt_state"`
	Packet       *struct {
		Type       string                      `json:"type"`
		SPI        string                      `json:"spi"`
		SPIWords   []string                    `json:"spi_decoded"`
		KIc        *struct{ Algorithm string } `json:"kic"`
		TAR        string                      `json:"tar"`
		Protection string                      `json:"protection"`
	} `json:"packet"`
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	code, body := get(t, u)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", u, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
}

// TestOpsConsole runs one Mobile ID authentication through the whole
// system and follows it in the operations console.
func TestOpsConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system")
	}
	dir := t.TempDir()
	s := start(t, Config{DataDir: dir, Addrs: anyPorts, Phones: 5})
	p := s.People[0]
	ph, _ := s.Phones.Phone(p.MSISDN)
	ph.SetBehaviour(handset.Behaviour{Action: handset.Approve})
	if st := authenticate(t, s); st["result"] != "OK" {
		t.Fatalf("authentication = %v, want OK", st)
	}
	ops := s.URLs.Console + "ops/"

	// The SMSC's records reach the console a moment after the
	// transaction ends; wait until the answer's deliver_sm is in.
	var tx opsTx
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Transactions []opsTx `json:"transactions"`
		}
		getJSON(t, ops+"api/transactions?limit=5", &list)
		i := slices.IndexFunc(list.Transactions, func(x opsTx) bool {
			return x.MSISDN == p.MSISDN && x.Kind == "sign" && x.APID == idserverAPID
		})
		if i >= 0 {
			tx = list.Transactions[i]
			if tx.step("deliver_sm") >= 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console does not show the authentication with its answer: %+v", list.Transactions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("transaction %s: %+v", tx.TransID, tx.Steps)
	if tx.State != "validated" || tx.Status != 502 || tx.Counter == 0 || tx.TAR == "" {
		t.Errorf("transaction %+v, want validated with 502 and its OTA counter and TAR", tx)
	}

	// The hops in the order they happen, each no earlier than the one
	// before.
	getJSON(t, ops+"api/transactions/"+tx.TransID, &tx)
	order := []string{"created", "submit_sm", "delivered to phone", "receipt", "sent by phone", "deliver_sm", "answered", "validated"}
	last := -1
	for _, name := range order {
		i := tx.step(name)
		if i < 0 || i < last {
			t.Fatalf("step %q at %d after %d: %+v", name, i, last, tx.Steps)
		}
		last = i
	}
	for i := 1; i < len(tx.Steps); i++ {
		a, _ := time.Parse(time.RFC3339Nano, tx.Steps[i-1].At)
		b, err := time.Parse(time.RFC3339Nano, tx.Steps[i].At)
		if err != nil || b.Before(a) || tx.Steps[i].ElapsedMS < tx.Steps[i-1].ElapsedMS {
			t.Errorf("step %d %+v comes before step %d %+v", i, tx.Steps[i], i-1, tx.Steps[i-1])
		}
	}

	// The SMS both ways, decoded, and the receipt.
	var mt, mo, rc *opsSMS
	for i := range tx.SMS {
		switch m := &tx.SMS[i]; m.Direction {
		case "MT":
			mt = m
		case "MO":
			mo = m
		case "receipt":
			rc = m
		}
	}
	switch {
	case mt == nil || mt.Packet == nil || mo == nil || mo.Packet == nil || rc == nil:
		t.Fatalf("SMS of the transaction: %+v, want the command, its receipt and the answer", tx.SMS)
	case mt.Packet.Type != "command" || mt.Packet.SPI != "1639" || mt.Packet.TAR != tx.TAR || mt.Packet.Protection != "ciphered" ||
		mt.Packet.KIc == nil || mt.Packet.KIc.Algorithm != "AES-CBC" || !slices.Contains(mt.Packet.SPIWords, "counter must be higher"):
		t.Errorf("MT decoded as %+v", *mt.Packet)
	case mo.Packet.Type != "response" || mo.Packet.SPI != "1639" || mo.Packet.TAR != tx.TAR || mo.Packet.Protection != "ciphered":
		t.Errorf("MO decoded as %+v", *mo.Packet)
	case rc.MessageID != mt.MessageID || rc.ReceiptState != "DELIVRD":
		t.Errorf("receipt %+v for MT %s", *rc, mt.MessageID)
	}
	var traffic struct {
		SMS []opsSMS `json:"sms"`
	}
	getJSON(t, ops+"api/sms", &traffic)
	if !slices.ContainsFunc(traffic.SMS, func(m opsSMS) bool { return m.Direction == "MO" && m.Packet != nil && m.Packet.TAR == tx.TAR }) {
		t.Errorf("api/sms lacks the answer: %+v", traffic.SMS)
	}

	// The pages.
	pages := []struct {
		path string
		want []string
	}{
		{"", []string{tx.TransID, "command packet · SPI 1639 · KIc 12 · KID 12 · TAR " + tx.TAR, "response packet · SPI 1639"}},
		{"transactions/" + tx.TransID, []string{"counter " + strconv.FormatUint(tx.Counter, 10), "delivered to phone", "VALID_SIGNATURE"}},
		{"certificates", []string{s.People[0].NationalID, s.People[1].NationalID, s.People[2].NationalID, "authentication", "signing"}},
		{"metrics", []string{"mobileid_mssp_transactions_finished_total", "mobileid_smsc_submit_total", "mobileid_ca_issued_total"}},
	}
	var bodies []string
	for _, pg := range pages {
		code, body := get(t, ops+pg.path)
		if code != http.StatusOK {
			t.Fatalf("GET /ops/%s = %d", pg.path, code)
		}
		for _, w := range pg.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET /ops/%s lacks %q", pg.path, w)
			}
		}
		bodies = append(bodies, body)
	}
	if _, landing := get(t, s.URLs.Console); !strings.Contains(landing, `href="/ops/"`) {
		t.Errorf("the landing page does not link to the operations console")
	}

	// The SIMs' OTA keys show nowhere.
	for _, u := range []string{"api/transactions", "api/transactions/" + tx.TransID, "api/sms", "api/certificates"} {
		_, body := get(t, ops+u)
		bodies = append(bodies, body)
	}
	recs, err := readOperatorFile(filepath.Join(dir, "sims", simfactory.OperatorFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for _, k := range [][]byte{r.KIcKey, r.KIDKey} {
			h := hex.EncodeToString(k)
			for _, b := range bodies {
				if strings.Contains(b, h) || strings.Contains(b, strings.ToUpper(h)) {
					t.Fatalf("the console shows an OTA key of %s", r.MSISDN)
				}
			}
		}
	}
}
