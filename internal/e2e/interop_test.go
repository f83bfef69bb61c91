package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ota"
	"mobileid/internal/sms"
	"mobileid/internal/store"
	"mobileid/internal/testenv"
	"mobileid/internal/vmac"
)

var npmOnce sync.Once

// nodeDir returns the folder of the node-smpp scripts with their pinned
// dependencies installed (into node_modules, which the repository
// ignores). Without node the test skips, except in CI.
func nodeDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.SkipOrFail(t, "node is not installed")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	var npmErr error
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "smpp", "package.json")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = err
			t.Logf("npm ci: %s", out)
		}
	})
	if npmErr != nil {
		t.Fatalf("installing node-smpp: %v", npmErr)
	}
	return dir
}

type nodeDeliver struct {
	SourceAddr      string `json:"source_addr"`
	DestinationAddr string `json:"destination_addr"`
	ESMClass        int    `json:"esm_class"`
	ProtocolID      int    `json:"protocol_id"`
	DataCoding      int    `json:"data_coding"`
	UDH             string `json:"udh"`
	Message         string `json:"message"`
}

// TestNodeESMEAgainstOurSMSC has node-smpp, as an ESME, bind to our SMSC,
// submit a binary SMS carrying an OTA-secured INFO command to a handset,
// and receive the SIM's MO answer and the delivery receipt.
func TestNodeESMEAgainstOurSMSC(t *testing.T) {
	dir := nodeDir(t)
	w := newWorld(t, 1, smscNoFaults)
	op := newOperator(w)
	var msisdn string
	for m := range w.recs {
		msisdn = m
	}
	pkt := op.wrap(t, msisdn, &vmac.Info{Ref: 42})
	tpud := append(append([]byte{}, ota.CommandUDH...), pkt...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "esme.js", "smpp://"+w.addr, systemID, password, serviceNumber, msisdn[1:], hex.EncodeToString(tpud), "1")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node esme.js: %v\n%s\n%s", err, out, stderr.String())
	}
	var res struct {
		BindStatus   int           `json:"bind_status"`
		SubmitStatus int           `json:"submit_status"`
		MessageID    string        `json:"message_id"`
		MO           []nodeDeliver `json:"mo"`
		Receipts     []nodeDeliver `json:"receipts"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if res.BindStatus != 0 || res.SubmitStatus != 0 || res.MessageID == "" || len(res.MO) != 1 || len(res.Receipts) < 1 {
		t.Fatalf("node ESME saw %+v", res)
	}
	mo := res.MO[0]
	if mo.ESMClass&0x40 == 0 || mo.ProtocolID != 0x7F || mo.DataCoding != 0xF6 || mo.UDH != "7100" ||
		strings.TrimPrefix(mo.SourceAddr, "+") != msisdn[1:] || mo.DestinationAddr != serviceNumber {
		t.Errorf("MO as node-smpp parsed it = %+v", mo)
	}
	packet, err := hex.DecodeString(mo.Message)
	if err != nil {
		t.Fatal(err)
	}
	rec := w.recs[msisdn]
	var sent *ota.Command
	for _, c := range op.pending {
		sent = c
	}
	r, err := ota.OpenResponse(packet, sent, ota.Keys{KIc: rec.KIcKey, KID: rec.KIDKey})
	if err != nil || !r.Secured || r.Counter != sent.Counter {
		t.Fatalf("OpenResponse = %+v, %v", r, err)
	}
	vr, err := vmac.ParseResponse(r.Data)
	if err != nil || vr.TxRef() != 42 || vr.(*vmac.InfoResponse).ICCID != rec.ICCID {
		t.Errorf("VMAC answer = %#v, %v", vr, err)
	}
	if !strings.Contains(res.Receipts[0].Message, res.MessageID) && !strings.Contains(mustUnhex(res.Receipts[0].Message), "id:"+res.MessageID) {
		t.Errorf("receipt %q does not name message %s", res.Receipts[0].Message, res.MessageID)
	}
}

func mustUnhex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

// TestOurESMEAgainstNodeSMSC binds our Messaging Server to an SMSC built
// on node-smpp and checks what node-smpp parsed out of our submit_sm: the
// binary SMS parameters and the user data headers we built.
func TestOurESMEAgainstNodeSMSC(t *testing.T) {
	dir := nodeDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "smsc.js", systemID, password)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	next := func() map[string]any {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatal("node smsc.js exited")
			}
			return m
		case <-ctx.Done():
			t.Fatal("timed out waiting for node smsc.js")
		}
		return nil
	}
	port, _ := next()["port"].(float64)
	w := &world{addr: fmt.Sprintf("127.0.0.1:%d", int(port))}
	db, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := startMessaging(t, w, db)
	if m := next(); m["pdu"] != "bind_transceiver" || m["ok"] != true {
		t.Fatalf("node SMSC saw %v", m)
	}

	short := bytes.Repeat([]byte{0xA5}, 40)
	long := bytes.Repeat([]byte{0x5A}, 300)
	for _, packet := range [][]byte{short, long} {
		if _, err := srv.SendPacket(context.Background(), "37250000001", packet, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		segs, err := sms.SplitCommandPacket(packet, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for i := range segs {
			m := next()
			if m["pdu"] != "submit_sm" {
				t.Fatalf("node SMSC saw %v", m)
			}
			want := map[string]any{"esm_class": 64.0, "protocol_id": 127.0, "data_coding": 246.0, "registered_delivery": 1.0,
				"destination_addr": "37250000001", "dest_addr_ton": 1.0, "source_addr": serviceNumber}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("segment %d: %s = %v, want %v", i, k, m[k], v)
				}
			}
			if vp, _ := m["validity_period"].(string); vp == "" {
				t.Errorf("segment %d: no validity_period", i)
			}
			ies, _, err := sms.ParseUDH(segs[i])
			if err != nil {
				t.Fatal(err)
			}
			var wantUDH []string
			for _, ie := range ies {
				wantUDH = append(wantUDH, hex.EncodeToString(append([]byte{ie.ID, byte(len(ie.Data))}, ie.Data...)))
			}
			var gotUDH []string
			for _, u := range m["udh"].([]any) {
				gotUDH = append(gotUDH, u.(string))
			}
			// The concatenation reference is the sender's; compare its shape.
			if len(gotUDH) != len(wantUDH) {
				t.Fatalf("segment %d: UDH %v, want %v", i, gotUDH, wantUDH)
			}
			if i == 0 && gotUDH[0] != "7000" {
				t.Errorf("segment %d: first IE %s, want 7000", i, gotUDH[0])
			}
			if len(segs) > 1 {
				want := wantUDH[len(wantUDH)-1]
				g := gotUDH[len(gotUDH)-1]
				if i > 0 {
					want, g = wantUDH[0], gotUDH[0]
				}
				// 00 03 ref total seq: total and seq must match.
				if g[:4] != "0003" || g[6:] != want[6:] {
					t.Errorf("segment %d: concatenation IE %s, want 0003xx%s", i, g, want[6:])
				}
			}
			data, _ := hex.DecodeString(m["message"].(string))
			got = append(got, data...)
		}
		if diff := cmp.Diff(packet, got); diff != "" {
			t.Errorf("reassembled packet differs (-want +got):\n%s", diff)
		}
	}
}
