package mssp

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ota"
	"mobileid/internal/simbatch"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/vmac"
)

var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// testRecords makes n SIM records with valid ICCIDs and random AES-128 keys.
func testRecords(t *testing.T, n int) []simbatch.Record {
	t.Helper()
	recs := make([]simbatch.Record, n)
	for i := range recs {
		body := fmt.Sprintf("899990100000000%03d", i+1)
		recs[i] = simbatch.Record{
			ICCID:  body + string(simbatch.LuhnDigit(body)),
			IMSI:   fmt.Sprintf("0010100000%05d", i+1),
			MSISDN: fmt.Sprintf("+3720000%04d", i+1),
			TAR:    ota.TAR{0x4d, 0x49, 0x44},
			KIc:    0x12,
			KID:    0x12,
			KIcKey: randBytes(t, 16),
			KIDKey: randBytes(t, 16),
		}
	}
	return recs
}

func newTestSIMs(t *testing.T, db *store.DB) *SIMs {
	t.Helper()
	s, err := NewSIMs(db, bytes.Repeat([]byte{0x5a}, 32), func() time.Time { return testNow })
	if err != nil {
		t.Fatalf("NewSIMs() = %v", err)
	}
	return s
}

// imported returns a registry holding recs.
func imported(t *testing.T, db *store.DB, recs []simbatch.Record) *SIMs {
	t.Helper()
	s := newTestSIMs(t, db)
	if _, _, err := s.Import(t.Context(), recs); err != nil {
		t.Fatalf("Import() = %v", err)
	}
	return s
}

func keysOf(r simbatch.Record) ota.Keys { return ota.Keys{KIc: r.KIcKey, KID: r.KIDKey} }

func simOf(r simbatch.Record) *SIM {
	return &SIM{ICCID: r.ICCID, IMSI: r.IMSI, MSISDN: r.MSISDN, TAR: r.TAR, KIc: r.KIc, KID: r.KID, ImportedAt: testNow}
}

// counter reads a SIM's stored counter.
func counter(t *testing.T, db *store.DB, msisdn string) int64 {
	t.Helper()
	var c int64
	if err := db.QueryRowContext(t.Context(), `SELECT counter FROM mssp_sims WHERE msisdn = $1`, msisdn).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// allSIMs reads every SIM in use (not retired by a swap), in ICCID order.
func allSIMs(t *testing.T, s *SIMs) []*SIM {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT msisdn FROM mssp_sims WHERE retired_at = 0 ORDER BY iccid`)
	if err != nil {
		t.Fatal(err)
	}
	var msisdns []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		msisdns = append(msisdns, m)
	}
	rows.Close()
	var sims []*SIM
	for _, m := range msisdns {
		sim, err := s.ByMSISDN(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		sims = append(sims, sim)
	}
	return sims
}

func TestNewSIMsKEK(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		for _, n := range []int{0, 16, 31, 33} {
			if _, err := NewSIMs(db, make([]byte, n), nil); err == nil {
				t.Errorf("NewSIMs(kek of %d bytes) succeeded", n)
			}
		}
		s := newTestSIMs(t, db)
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			if got := fmt.Sprintf(f, s); got != "mssp.SIMs" {
				t.Errorf("Sprintf(%q, s) = %q, want mssp.SIMs", f, got)
			}
		}
	})
}

func TestImport(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 3)
		s := newTestSIMs(t, db)
		added, skipped, err := s.Import(t.Context(), recs)
		if err != nil || added != 3 || skipped != 0 {
			t.Fatalf("Import() = %d, %d, %v; want 3, 0, nil", added, skipped, err)
		}
		want := []*SIM{simOf(recs[0]), simOf(recs[1]), simOf(recs[2])}
		if diff := cmp.Diff(want, allSIMs(t, s)); diff != "" {
			t.Fatalf("SIMs after import (-want +got):\n%s", diff)
		}

		// Again, plus one new SIM: the known ones are skipped.
		more := append(append([]simbatch.Record(nil), recs...), testRecords(t, 4)[3])
		added, skipped, err = s.Import(t.Context(), more)
		if err != nil || added != 1 || skipped != 3 {
			t.Fatalf("re-Import() = %d, %d, %v; want 1, 3, nil", added, skipped, err)
		}
		want = append(want, simOf(more[3]))

		conflict := func(f func(r *simbatch.Record)) []simbatch.Record {
			c := append([]simbatch.Record(nil), more...)
			f(&c[1])
			// A new, valid SIM in the same batch must not be imported either.
			c = append(c, testRecords(t, 5)[4])
			return c
		}
		other := testRecords(t, 5)
		for _, tc := range []struct {
			name string
			recs []simbatch.Record
		}{
			{"other KIc key", conflict(func(r *simbatch.Record) { r.KIcKey = other[0].KIcKey })},
			{"other KID key", conflict(func(r *simbatch.Record) { r.KIDKey = other[0].KIDKey })},
			{"other MSISDN", conflict(func(r *simbatch.Record) { r.MSISDN = "+37299999999" })},
			{"other KIc", conflict(func(r *simbatch.Record) { r.KIc = 0x22 })},
			{"MSISDN of another SIM", conflict(func(r *simbatch.Record) {
				r.ICCID, r.KIcKey, r.KIDKey = other[4].ICCID, other[4].KIcKey, other[4].KIDKey
			})},
			{"same ICCID twice in batch", append(testRecords(t, 5)[4:], func() simbatch.Record {
				r := testRecords(t, 5)[4]
				return r // same ICCID and MSISDN, fresh random keys
			}())},
		} {
			t.Run(tc.name, func(t *testing.T) {
				added, skipped, err := s.Import(t.Context(), tc.recs)
				if !errors.Is(err, ErrImportConflict) {
					t.Fatalf("Import() = %d, %d, %v; want ErrImportConflict", added, skipped, err)
				}
				if diff := cmp.Diff(want, allSIMs(t, s)); diff != "" {
					t.Errorf("SIMs changed by a failed import (-want +got):\n%s", diff)
				}
			})
		}

		bad := testRecords(t, 6)[5:]
		bad[0].MSISDN = "37200000006"
		if _, _, err := s.Import(t.Context(), bad); err == nil {
			t.Errorf("Import(invalid MSISDN) succeeded")
		}
	})
}

func TestByMSISDN(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 2)
		s := imported(t, db, recs)
		for _, tc := range []struct {
			msisdn  string
			want    *SIM
			wantErr error
		}{
			{recs[0].MSISDN, simOf(recs[0]), nil},
			{recs[1].MSISDN, simOf(recs[1]), nil},
			{"+37211111111", nil, ErrUnknownSIM},
		} {
			got, err := s.ByMSISDN(t.Context(), tc.msisdn)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ByMSISDN(%s) error = %v, want %v", tc.msisdn, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ByMSISDN(%s) (-want +got):\n%s", tc.msisdn, diff)
			}
		}
		for _, m := range []string{"", "37200000001", "+0720000001", "+372abc00001"} {
			if _, err := s.ByMSISDN(t.Context(), m); err == nil || errors.Is(err, ErrUnknownSIM) {
				t.Errorf("ByMSISDN(%q) = %v, want a format error", m, err)
			}
		}
	})
}

// cardOpen opens pkt as the card would, with rec's keys.
func cardOpen(t *testing.T, rec simbatch.Record, pkt []byte) *ota.Command {
	t.Helper()
	p, err := ota.ParseCommandPacket(pkt)
	if err != nil {
		t.Fatalf("ParseCommandPacket() = %v", err)
	}
	c, err := p.Open(keysOf(rec))
	if err != nil {
		t.Fatalf("card Open() = %v", err)
	}
	return c
}

func TestWrap(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 2)
		s := imported(t, db, recs)
		rec := recs[0]
		wantSPI, err := ota.ParseSPI(0x16, 0x39)
		if err != nil {
			t.Fatal(err)
		}
		for i, data := range [][]byte{[]byte("first signature request"), {0x00, 0xa4, 0x00, 0x04}} {
			pkt, cmd, err := s.Wrap(t.Context(), nil, rec.MSISDN, data)
			if err != nil {
				t.Fatalf("Wrap() = %v", err)
			}
			if cmd.Counter != uint64(i+1) {
				t.Errorf("Wrap() counter = %d, want %d", cmd.Counter, i+1)
			}
			if bytes.Contains(pkt, data) {
				t.Errorf("packet carries the data in clear")
			}
			got := cardOpen(t, rec, pkt)
			if got.SPI != wantSPI || got.SPI.Bytes() != [2]byte{0x16, 0x39} {
				t.Errorf("card sees SPI %v, want 16 39", got.SPI)
			}
			if diff := cmp.Diff(
				[]any{got.KIc, got.KID, got.TAR, got.Counter, got.Data},
				[]any{rec.KIc, rec.KID, rec.TAR, uint64(i + 1), data}); diff != "" {
				t.Errorf("card sees (-got +want):\n%s", diff)
			}
		}
		// The other SIM has its own counter and keys.
		pkt, cmd, err := s.Wrap(t.Context(), nil, recs[1].MSISDN, []byte("x"))
		if err != nil || cmd.Counter != 1 {
			t.Fatalf("Wrap(other SIM) = %v, counter %v", err, cmd)
		}
		if p, _ := ota.ParseCommandPacket(pkt); p != nil {
			if _, err := p.Open(keysOf(rec)); err == nil {
				t.Errorf("packet for SIM 2 opens with SIM 1's keys")
			}
		}

		if _, _, err := s.Wrap(t.Context(), nil, "+37211111111", nil); !errors.Is(err, ErrUnknownSIM) {
			t.Errorf("Wrap(unknown) = %v, want ErrUnknownSIM", err)
		}
		if _, _, err := s.Wrap(t.Context(), nil, "not a number", nil); err == nil {
			t.Errorf("Wrap(invalid MSISDN) succeeded")
		}
	})
}

func TestWrapTx(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 1)
		s := imported(t, db, recs)
		m := recs[0].MSISDN
		wrapIn := func(commit bool) uint64 {
			tx, err := db.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, cmd, err := s.Wrap(t.Context(), tx, m, []byte("in tx"))
			if err != nil {
				tx.Rollback()
				t.Fatalf("Wrap(tx) = %v", err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			return cmd.Counter
		}
		var got []uint64
		got = append(got, wrapIn(true), wrapIn(false))
		if c := counter(t, db, m); c != 1 {
			t.Errorf("counter after a rolled-back Wrap = %d, want 1", c)
		}
		got = append(got, wrapIn(true))
		// InTx as a caller would use it.
		err := db.InTx(t.Context(), func(tx *sql.Tx) error {
			_, cmd, err := s.Wrap(t.Context(), tx, m, nil)
			if err == nil {
				got = append(got, cmd.Counter)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The rolled-back counter 2 was never sent, so it is given again.
		if diff := cmp.Diff([]uint64{1, 2, 2, 3}, got); diff != "" {
			t.Errorf("counters (-want +got):\n%s", diff)
		}
	})
}

func TestWrapConcurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 1)
		s := imported(t, db, recs)
		other := newTestSIMs(t, storetest.Another(t, db)) // a second node
		const workers, each = 6, 5
		var (
			mu   sync.Mutex
			seen = map[uint64]int{}
			wg   sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				r := s
				if w%2 == 1 {
					r = other
				}
				for range each {
					pkt, cmd, err := r.Wrap(t.Context(), nil, recs[0].MSISDN, []byte{byte(w)})
					if err != nil {
						t.Errorf("Wrap() = %v", err)
						return
					}
					if c := cardOpen(t, recs[0], pkt); c.Counter != cmd.Counter {
						t.Errorf("packet counter %d, command %d", c.Counter, cmd.Counter)
					}
					mu.Lock()
					seen[cmd.Counter]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for c := uint64(1); c <= workers*each; c++ {
			if seen[c] != 1 {
				t.Errorf("counter %d given %d times", c, seen[c])
			}
		}
		if len(seen) != workers*each {
			t.Errorf("%d distinct counters, want %d", len(seen), workers*each)
		}
	})
}

func TestWrapCounterExhausted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 1)
		s := imported(t, db, recs)
		m := recs[0].MSISDN
		if _, err := db.ExecContext(t.Context(), `UPDATE mssp_sims SET counter = $1`, int64(ota.MaxCounter-1)); err != nil {
			t.Fatal(err)
		}
		_, cmd, err := s.Wrap(t.Context(), nil, m, nil)
		if err != nil || cmd.Counter != ota.MaxCounter {
			t.Fatalf("Wrap() = %v, %v; want counter MaxCounter", cmd, err)
		}
		if _, _, err := s.Wrap(t.Context(), nil, m, nil); !errors.Is(err, ErrCounterExhausted) {
			t.Errorf("Wrap() at MaxCounter = %v, want ErrCounterExhausted", err)
		}
		if c := counter(t, db, m); c != ota.MaxCounter {
			t.Errorf("counter = %d, want MaxCounter", c)
		}
	})
}

func TestOpen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 2)
		s := imported(t, db, recs)
		rec := recs[0]
		_, cmd, err := s.Wrap(t.Context(), nil, rec.MSISDN, []byte("request"))
		if err != nil {
			t.Fatal(err)
		}
		_, cmd2, err := s.Wrap(t.Context(), nil, rec.MSISDN, []byte("request 2"))
		if err != nil {
			t.Fatal(err)
		}
		cardResp := func(counter uint64, status ota.Status, data []byte) []byte {
			t.Helper()
			b, err := ota.WrapResponse(&ota.Response{TAR: rec.TAR, Counter: counter, Status: status, Data: data}, cmd, keysOf(rec))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		otherKeys, err := ota.WrapResponse(&ota.Response{TAR: rec.TAR, Counter: cmd.Counter, Data: []byte("x")}, cmd, keysOf(recs[1]))
		if err != nil {
			t.Fatal(err)
		}
		unsecured := ota.WrapUnsecuredResponse(&ota.Response{TAR: rec.TAR, Counter: cmd.Counter, Status: ota.Status(0x02)})

		for _, tc := range []struct {
			name    string
			msisdn  string
			cmd     *ota.Command
			resp    []byte
			want    *ota.Response
			wantErr error
			anyErr  bool
		}{
			{name: "ok", msisdn: rec.MSISDN, cmd: cmd, resp: cardResp(cmd.Counter, 0, []byte("signature")),
				want: &ota.Response{TAR: rec.TAR, Counter: cmd.Counter, Data: []byte("signature"), Secured: true}},
			{name: "with udh", msisdn: rec.MSISDN, cmd: cmd, resp: append(bytes.Clone(ota.ResponseUDH), cardResp(cmd.Counter, 0, nil)...),
				want: &ota.Response{TAR: rec.TAR, Counter: cmd.Counter, Data: []byte{}, Secured: true}},
			{name: "counter mismatch", msisdn: rec.MSISDN, cmd: cmd, resp: cardResp(cmd.Counter+1, 0, nil), wantErr: ErrResponseMismatch},
			{name: "response to another command", msisdn: rec.MSISDN, cmd: cmd2, resp: cardResp(cmd.Counter, 0, nil), anyErr: true},
			{name: "other SIM's keys", msisdn: rec.MSISDN, cmd: cmd, resp: otherKeys, anyErr: true},
			{name: "unknown SIM", msisdn: "+37211111111", cmd: cmd, resp: cardResp(cmd.Counter, 0, nil), wantErr: ErrUnknownSIM},
			{name: "unsecured error PoR", msisdn: rec.MSISDN, cmd: cmd, resp: unsecured,
				want: &ota.Response{TAR: rec.TAR, Counter: cmd.Counter, Status: 0x02, Data: []byte{}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Open(t.Context(), tc.msisdn, tc.cmd, tc.resp)
				switch {
				case tc.wantErr != nil || tc.anyErr:
					if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
						t.Fatalf("Open() = %+v, %v; want error %v", got, err, tc.wantErr)
					}
					return
				case err != nil:
					t.Fatalf("Open() = %v", err)
				}
				if diff := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool {
					f := p.Last().String()
					return f == ".Check" || f == ".PCNTR"
				}, cmp.Ignore()), cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
					t.Errorf("Open() (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestKeysAtRest(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 2)
		s := imported(t, db, recs)
		rows, err := db.QueryContext(t.Context(), `SELECT * FROM mssp_sims`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				default:
					b = fmt.Append(nil, v)
				}
				for _, r := range recs {
					for _, k := range [][]byte{r.KIcKey, r.KIDKey} {
						if bytes.Contains(b, k) || bytes.Contains(bytes.ToLower(b), []byte(hex.EncodeToString(k))) {
							t.Errorf("column %s holds a key in clear", cols[i])
						}
					}
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != len(recs) {
			t.Fatalf("%d rows, want %d", n, len(recs))
		}

		// The keys are bound to their ICCID: copied to another SIM, they
		// do not open.
		if _, err := db.ExecContext(t.Context(), `UPDATE mssp_sims SET keys = (SELECT keys FROM mssp_sims WHERE iccid = $1) WHERE iccid = $2`,
			recs[0].ICCID, recs[1].ICCID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Wrap(t.Context(), nil, recs[1].MSISDN, nil); err == nil {
			t.Errorf("Wrap() with keys copied from another SIM succeeded")
		}
		if _, _, err := s.Wrap(t.Context(), nil, recs[0].MSISDN, nil); err != nil {
			t.Errorf("Wrap() = %v", err)
		}

		// Another key-encryption key does not open them either.
		wrong, err := NewSIMs(db, bytes.Repeat([]byte{0xa5}, 32), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := wrong.Wrap(t.Context(), nil, recs[0].MSISDN, nil); err == nil {
			t.Errorf("Wrap() under another key-encryption key succeeded")
		}
	})
}

// replacement is a new card for r's number, as the vendor personalises it
// for a SIM swap: another ICCID and IMSI, new keys, here also another TAR
// and key set, so that a test sees which SIM a packet was made for.
func replacement(t *testing.T, r simbatch.Record, n int) simbatch.Record {
	t.Helper()
	body := fmt.Sprintf("89999020000%04d%04d", n, len(r.MSISDN))
	return simbatch.Record{
		ICCID:  body + string(simbatch.LuhnDigit(body)),
		IMSI:   fmt.Sprintf("0010120000%05d", n),
		MSISDN: r.MSISDN,
		TAR:    ota.TAR{0x4d, 0x49, byte(0x44 + n)},
		KIc:    0x22,
		KID:    0x22,
		KIcKey: randBytes(t, 16),
		KIDKey: randBytes(t, 16),
	}
}

// saveUser registers keys for msisdn at the MSSP, as a GenerateKeys does.
func saveUser(t *testing.T, db *store.DB, msisdn, iccid string) {
	t.Helper()
	users, err := NewUsers(db, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	key := vmac.KeyEntry{Alg: vmac.AlgECDSAP256, SPKI: []byte("spki of " + msisdn)}
	if err := db.InTx(t.Context(), func(tx *sql.Tx) error {
		return users.saveKeys(t.Context(), tx, msisdn, iccid, key, key)
	}); err != nil {
		t.Fatalf("saveKeys(%s) = %v", msisdn, err)
	}
}

// userICCID returns the ICCID the MSSP's user of msisdn registered with,
// read by a registry without a cache, or "" when there is no user.
func userICCID(t *testing.T, db *store.DB, msisdn string) string {
	t.Helper()
	users, err := NewUsers(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := users.Get(t.Context(), msisdn)
	if errors.Is(err, ErrUnknownUser) {
		return ""
	}
	if err != nil {
		t.Fatalf("Users.Get(%s) = %v", msisdn, err)
	}
	return u.ICCID
}

// retired reads what a swap left of a SIM.
type retiredRow struct {
	MSISDN, RetiredMSISDN string
	RetiredAt             int64
}

func retiredOf(t *testing.T, db *store.DB, iccid string) retiredRow {
	t.Helper()
	var r retiredRow
	if err := db.QueryRowContext(t.Context(), `SELECT msisdn, retired_msisdn, retired_at FROM mssp_sims WHERE iccid = $1`, iccid).
		Scan(&r.MSISDN, &r.RetiredMSISDN, &r.RetiredAt); err != nil {
		t.Fatalf("read SIM %s: %v", iccid, err)
	}
	return r
}

func TestSwap(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 2)
		s := imported(t, db, recs)
		m := recs[0].MSISDN
		saveUser(t, db, m, recs[0].ICCID)
		saveUser(t, db, recs[1].MSISDN, recs[1].ICCID)
		var before *ota.Command
		for range 3 {
			_, cmd, err := s.Wrap(t.Context(), nil, m, []byte("to the old SIM"))
			if err != nil {
				t.Fatal(err)
			}
			before = cmd
		}

		repl := replacement(t, recs[0], 1)
		old, err := s.Swap(t.Context(), repl)
		if err != nil {
			t.Fatalf("Swap() = %v", err)
		}
		if diff := cmp.Diff(simOf(recs[0]), old); diff != "" {
			t.Errorf("Swap() old SIM (-want +got):\n%s", diff)
		}
		got, err := s.ByMSISDN(t.Context(), m)
		if err != nil {
			t.Fatalf("ByMSISDN() after swap = %v", err)
		}
		if diff := cmp.Diff(simOf(repl), got); diff != "" {
			t.Errorf("ByMSISDN() after swap (-want +got):\n%s", diff)
		}
		want := retiredRow{MSISDN: "retired:" + recs[0].ICCID, RetiredMSISDN: m, RetiredAt: testNow.UnixMicro()}
		if diff := cmp.Diff(want, retiredOf(t, db, recs[0].ICCID)); diff != "" {
			t.Errorf("retired SIM row (-want +got):\n%s", diff)
		}
		// The user's keys were on the old card; the other number keeps its
		// user.
		if got := userICCID(t, db, m); got != "" {
			t.Errorf("user of %s after swap registered with %q, want none", m, got)
		}
		if got := userICCID(t, db, recs[1].MSISDN); got != recs[1].ICCID {
			t.Errorf("user of %s = %q, want %s", recs[1].MSISDN, got, recs[1].ICCID)
		}

		// The new card starts again at counter 1, with its own keys and TAR.
		pkt, cmd, err := s.Wrap(t.Context(), nil, m, []byte("to the new SIM"))
		if err != nil {
			t.Fatalf("Wrap() after swap = %v", err)
		}
		if cmd.Counter != 1 || cmd.TAR != repl.TAR || cmd.KIc != repl.KIc || cmd.KID != repl.KID {
			t.Errorf("Wrap() after swap: counter %d TAR %s KIc %02x KID %02x, want 1 %s %02x %02x",
				cmd.Counter, cmd.TAR, cmd.KIc, cmd.KID, repl.TAR, repl.KIc, repl.KID)
		}
		if c := cardOpen(t, repl, pkt); !bytes.Equal(c.Data, []byte("to the new SIM")) || c.Counter != 1 {
			t.Errorf("new card sees counter %d data %q", c.Counter, c.Data)
		}
		if p, _ := ota.ParseCommandPacket(pkt); p != nil {
			if _, err := p.Open(keysOf(recs[0])); err == nil {
				t.Errorf("packet for the new SIM opens with the old SIM's keys")
			}
		}
		resp, err := ota.WrapResponse(&ota.Response{TAR: repl.TAR, Counter: 1, Data: []byte("ok")}, cmd, keysOf(repl))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := s.Open(t.Context(), m, cmd, resp); err != nil || !r.Secured || string(r.Data) != "ok" {
			t.Errorf("Open(new card's response) = %+v, %v", r, err)
		}
		// An answer of the old card to a command made before the swap no
		// longer opens.
		oldResp, err := ota.WrapResponse(&ota.Response{TAR: recs[0].TAR, Counter: before.Counter}, before, keysOf(recs[0]))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := s.Open(t.Context(), m, before, oldResp); err == nil {
			t.Errorf("Open(old card's response) after swap = %+v, want an error", r)
		}

		// Swapped again: the second card retires too, the third starts at 1.
		repl2 := replacement(t, recs[0], 2)
		old, err = s.Swap(t.Context(), repl2)
		if err != nil {
			t.Fatalf("second Swap() = %v", err)
		}
		if diff := cmp.Diff(simOf(repl), old); diff != "" {
			t.Errorf("second Swap() old SIM (-want +got):\n%s", diff)
		}
		if _, cmd, err := s.Wrap(t.Context(), nil, m, nil); err != nil || cmd.Counter != 1 || cmd.TAR != repl2.TAR {
			t.Errorf("Wrap() after the second swap = %+v, %v; want counter 1 and TAR %s", cmd, err, repl2.TAR)
		}
		if got := retiredOf(t, db, repl.ICCID); got.MSISDN != "retired:"+repl.ICCID || got.RetiredMSISDN != m {
			t.Errorf("second card after the second swap = %+v, want retired from %s", got, m)
		}
		wantInUse := []*SIM{simOf(recs[1]), simOf(repl2)}
		if diff := cmp.Diff(wantInUse, allSIMs(t, s)); diff != "" {
			t.Errorf("SIMs in use (-want +got):\n%s", diff)
		}

		// The first batch imported again: the retired SIM is known as it
		// was, and stays retired.
		if added, skipped, err := s.Import(t.Context(), recs); err != nil || added != 0 || skipped != 2 {
			t.Errorf("Import(first batch again) = %d, %d, %v; want 0, 2, nil", added, skipped, err)
		}
		changed := recs[0]
		changed.KIcKey = randBytes(t, 16)
		if _, _, err := s.Import(t.Context(), []simbatch.Record{changed}); !errors.Is(err, ErrImportConflict) {
			t.Errorf("Import(retired SIM with other keys) = %v, want ErrImportConflict", err)
		}

		// A number without a SIM: the new card is simply imported.
		fresh := testRecords(t, 3)[2]
		if old, err := s.Swap(t.Context(), fresh); err != nil || old != nil {
			t.Errorf("Swap(number without a SIM) = %v, %v; want nil, nil", old, err)
		}
		wantInUse = []*SIM{simOf(recs[1]), simOf(fresh), simOf(repl2)} // in ICCID order
		if diff := cmp.Diff(wantInUse, allSIMs(t, s)); diff != "" {
			t.Errorf("SIMs in use after swapping a new number (-want +got):\n%s", diff)
		}

		onNumber := func(r simbatch.Record, msisdn string) simbatch.Record {
			r.MSISDN = msisdn
			return r
		}
		for _, tc := range []struct {
			name string
			rec  simbatch.Record
		}{
			{"ICCID of the SIM in use", repl2},
			{"ICCID of the SIM in use, other keys", replacement(t, recs[0], 2)},
			{"ICCID of a retired SIM", replacement(t, recs[0], 1)},
			{"ICCID of the first, retired SIM", recs[0]},
			{"ICCID of another number's SIM", onNumber(recs[1], m)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if old, err := s.Swap(t.Context(), tc.rec); !errors.Is(err, ErrImportConflict) {
					t.Fatalf("Swap() = %v, %v; want ErrImportConflict", old, err)
				}
				if diff := cmp.Diff(wantInUse, allSIMs(t, s)); diff != "" {
					t.Errorf("SIMs changed by a refused swap (-want +got):\n%s", diff)
				}
			})
		}
		bad := replacement(t, recs[0], 3)
		bad.MSISDN = "37200000001"
		if _, err := s.Swap(t.Context(), bad); err == nil || errors.Is(err, ErrImportConflict) {
			t.Errorf("Swap(invalid MSISDN) = %v, want a format error", err)
		}
		if diff := cmp.Diff(wantInUse, allSIMs(t, s)); diff != "" {
			t.Errorf("SIMs changed by an invalid swap (-want +got):\n%s", diff)
		}
	})
}

// TestSwapConcurrent swaps one number to two different cards at once, from
// two nodes. The swaps are serialised: each succeeds or is refused as a
// conflict, and in the end the number has exactly one SIM, a card whose swap
// succeeded, with every other card of the number retired.
func TestSwapConcurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		recs := testRecords(t, 1)
		m := recs[0].MSISDN
		s := imported(t, db, recs)
		other := newTestSIMs(t, storetest.Another(t, db))
		cards := []simbatch.Record{replacement(t, recs[0], 1), replacement(t, recs[0], 2)}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, r := range []*SIMs{s, other} {
			wg.Go(func() { _, errs[i] = r.Swap(t.Context(), cards[i]) })
		}
		wg.Wait()
		swapped := map[string]bool{}
		for i, err := range errs {
			switch {
			case err == nil:
				swapped[cards[i].ICCID] = true
			case !errors.Is(err, ErrImportConflict):
				t.Errorf("Swap(card %d) = %v, want nil or ErrImportConflict", i, err)
			}
		}
		got, err := s.ByMSISDN(t.Context(), m)
		if err != nil || !swapped[got.ICCID] {
			t.Fatalf("ByMSISDN() = %+v, %v; want one of the swapped cards %v", got, err, swapped)
		}
		if n := len(allSIMs(t, s)); n != 1 {
			t.Errorf("%d SIMs in use, want 1", n)
		}
		for _, iccid := range []string{recs[0].ICCID, cards[0].ICCID, cards[1].ICCID} {
			if iccid == got.ICCID || (iccid != recs[0].ICCID && !swapped[iccid]) {
				continue
			}
			if r := retiredOf(t, db, iccid); r.RetiredMSISDN != m || r.RetiredAt == 0 {
				t.Errorf("SIM %s = %+v, want retired from %s", iccid, r, m)
			}
		}
	})
}
