package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// stampLayout is RFC 3339 with milliseconds, the API's time format.
const stampLayout = "2006-01-02T15:04:05.000Z07:00"

// stamp formats t for the API, in UTC; the zero time is empty.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(stampLayout)
}

// millis is a duration in milliseconds with microsecond precision.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON encodes the step with its time in RFC 3339 with
// milliseconds and its durations in milliseconds.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name      string  `json:"step"`
		From      string  `json:"from"`
		To        string  `json:"to"`
		At        string  `json:"at"`
		ElapsedMS float64 `json:"elapsed_ms"`
		DeltaMS   float64 `json:"delta_ms"`
		Note      string  `json:"note,omitempty"`
	}{s.Name, s.From, s.To, stamp(s.At), millis(s.Elapsed), millis(s.Delta), s.Note})
}

// MarshalJSON encodes the segment with its times in RFC 3339 with
// milliseconds.
func (s SMS) MarshalJSON() ([]byte, error) {
	type plain SMS
	return json.Marshal(struct {
		plain
		Time  string `json:"time"`
		Taken string `json:"taken"`
	}{plain(s), stamp(s.Time), stamp(s.Taken)})
}

// txJSON is a transaction in the API.
type txJSON struct {
	TransID    string   `json:"trans_id"`
	APID       string   `json:"ap_id"`
	APTransID  string   `json:"ap_trans_id"`
	Kind       string   `json:"kind"`
	Operation  string   `json:"operation,omitempty"`
	MSISDN     string   `json:"msisdn"`
	Mode       string   `json:"mode"`
	Profile    string   `json:"profile,omitempty"`
	State      string   `json:"state"`
	Final      bool     `json:"final"`
	Status     int      `json:"status"`
	StatusName string   `json:"status_name"`
	Detail     int      `json:"detail,omitempty"`
	Message    string   `json:"message,omitempty"`
	Counter    uint64   `json:"counter,omitempty"`
	TAR        string   `json:"tar,omitempty"`
	Created    string   `json:"created"`
	Delivered  string   `json:"delivered,omitempty"`
	Answered   string   `json:"answered,omitempty"`
	Finished   string   `json:"finished,omitempty"`
	Deadline   string   `json:"deadline"`
	DurationMS *float64 `json:"duration_ms,omitempty"`
	Steps      []Step   `json:"steps"`
	SMS        []SMS    `json:"sms,omitempty"`
}

func newTxJSON(t *Transaction, st []Step, sms []SMS) txJSON {
	j := txJSON{
		TransID: t.TransID, APID: t.APID, APTransID: t.APTransID, Kind: t.Kind, Operation: t.Operation, MSISDN: t.MSISDN,
		Mode: t.Mode, Profile: t.Profile, State: t.State, Final: t.Final(), Status: t.Status, StatusName: t.StatusName,
		Detail: t.Detail, Message: t.Message, Counter: t.Counter, TAR: t.TAR,
		Created: stamp(t.Created), Delivered: stamp(t.Delivered), Answered: stamp(t.Answered), Finished: stamp(t.Finished),
		Deadline: stamp(t.Deadline), Steps: st, SMS: sms,
	}
	if j.Steps == nil {
		j.Steps = []Step{}
	}
	if t.Final() {
		d := millis(t.Finished.Sub(t.Created))
		j.DurationMS = &d
	}
	return j
}

// certJSON is a certificate in the API.
type certJSON struct {
	Serial     string `json:"serial"`
	Subject    string `json:"subject"`
	Profile    string `json:"profile"`
	Country    string `json:"country,omitempty"`
	NationalID string `json:"national_id,omitempty"`
	ICCID      string `json:"iccid,omitempty"`
	NotBefore  string `json:"not_before"`
	NotAfter   string `json:"not_after"`
	IssuedAt   string `json:"issued_at"`
	Status     string `json:"status"`
	RevokedAt  string `json:"revoked_at,omitempty"`
	Reason     *int   `json:"reason,omitempty"`
	ReasonName string `json:"reason_name,omitempty"`
}

func newCertJSON(c *Certificate) certJSON {
	j := certJSON{
		Serial: c.Serial, Subject: c.Subject, Profile: c.Profile, Country: c.Country, NationalID: c.NationalID, ICCID: c.ICCID,
		NotBefore: stamp(c.NotBefore), NotAfter: stamp(c.NotAfter), IssuedAt: stamp(c.IssuedAt), Status: c.Status,
		RevokedAt: stamp(c.RevokedAt),
	}
	if c.Status != "good" {
		r := c.Reason
		j.Reason, j.ReasonName = &r, ReasonName(c.Reason)
	}
	return j
}

// ReasonName names an RFC 5280 CRL reason code.
func ReasonName(code int) string {
	names := map[int]string{
		0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged", 4: "superseded",
		5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return "reason " + strconv.Itoa(code)
}

// apiLimit reads the limit parameter: 1 to 500, 50 when absent.
func apiLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultAPILimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxAPILimit {
		return 0, fmt.Errorf("limit must be a number from 1 to %d", maxAPILimit)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// apiTransactions serves GET api/transactions?limit=N.
func (c *Console) apiTransactions(w http.ResponseWriter, r *http.Request) {
	limit, err := apiLimit(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if c.src.Transactions == nil {
		apiError(w, http.StatusNotFound, "this console has no transaction source")
		return
	}
	txs, err := c.recent(r, limit)
	if err != nil {
		c.log.Warn("list transactions", "err", err)
		apiError(w, http.StatusInternalServerError, "cannot list the transactions")
		return
	}
	traffic := c.traffic()
	out := make([]txJSON, 0, len(txs))
	for i := range txs {
		t := &txs[i]
		out = append(out, newTxJSON(t, steps(t, related(t, traffic, c.now())), nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"transactions": out})
}

// apiTransaction serves GET api/transactions/{transID}.
func (c *Console) apiTransaction(w http.ResponseWriter, r *http.Request) {
	if c.src.Transactions == nil {
		apiError(w, http.StatusNotFound, "this console has no transaction source")
		return
	}
	t, err := c.transaction(r, r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		apiError(w, http.StatusNotFound, "no transaction "+strconv.Quote(r.PathValue("id")))
		return
	case err != nil:
		c.log.Warn("read transaction", "err", err)
		apiError(w, http.StatusInternalServerError, "cannot read the transaction")
		return
	}
	sms := related(t, c.traffic(), c.now())
	j := newTxJSON(t, steps(t, sms), sms)
	if j.SMS == nil {
		j.SMS = []SMS{}
	}
	writeJSON(w, http.StatusOK, j)
}

// apiSMS serves GET api/sms?limit=N.
func (c *Console) apiSMS(w http.ResponseWriter, r *http.Request) {
	limit, err := apiLimit(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, dropped := []SMS{}, uint64(0)
	if c.src.SMS != nil {
		out, dropped = c.src.SMS.Recent(limit), c.src.SMS.Dropped()
	}
	writeJSON(w, http.StatusOK, map[string]any{"sms": out, "dropped": dropped})
}

// apiCertificates serves GET api/certificates?limit=N.
func (c *Console) apiCertificates(w http.ResponseWriter, r *http.Request) {
	limit, err := apiLimit(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if c.src.Certificates == nil {
		apiError(w, http.StatusNotFound, "this console has no certificate source")
		return
	}
	certs, err := c.certificates(r, limit)
	if err != nil {
		c.log.Warn("list certificates", "err", err)
		apiError(w, http.StatusInternalServerError, "cannot list the certificates")
		return
	}
	out := make([]certJSON, 0, len(certs))
	for i := range certs {
		out = append(out, newCertJSON(&certs[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": out})
}
