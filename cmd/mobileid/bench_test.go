package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown mode", []string{"--mode", "soap"}, "unknown mode"},
		{"closed and open loop", []string{"--concurrency", "4", "--rate", "10"}, "exclude each other"},
		{"more workers than phones", []string{"--concurrency", "8", "--phones", "4"}, "needs as many phones"},
		{"arrivals", []string{"--rate", "10", "--arrivals", "bursty"}, "--arrivals"},
		{"key with a target", []string{"--target", "http://127.0.0.1:1", "--key", "rsa"}, "in process only"},
		{"bad flag", []string{"--phones", "many"}, "invalid value"},
		{"argument", []string{"etsi-synch"}, "unexpected argument"},
		{"cms with mid", []string{"--mode", "mid", "--format", "cms"}, "ETSI modes only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"bench"}, tt.args...)...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || out != "" {
				t.Errorf("bench %v = %d, %q, %q; want exit 2 and one line with %q", tt.args, code, out, errOut, tt.want)
			}
		})
	}
}

func TestBenchJSON(t *testing.T) {
	code, out, errOut := runCmd(t, "bench", "--phones", "4", "--duration", "1s", "--warmup", "200ms", "--floor", "200ms", "--json")
	if code != 0 {
		t.Fatalf("bench = %d: %s", code, errOut)
	}
	var res struct {
		Mode         string             `json:"mode"`
		Transactions int64              `json:"transactions"`
		ErrorCount   int64              `json:"error_count"`
		Latency      map[string]float64 `json:"latency_ms"`
		Floor        map[string]any     `json:"crypto_floor"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Mode != "etsi-synch" || res.Transactions == 0 || res.ErrorCount != 0 || res.Latency["p99"] <= 0 || res.Floor["tx_per_sec"] == nil {
		t.Errorf("bench --json = %+v", res)
	}
	if !strings.Contains(errOut, "tx/s  total") {
		t.Errorf("no progress line on standard error:\n%s", errOut)
	}
}
