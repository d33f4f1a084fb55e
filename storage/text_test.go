package storage

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTextRoundTrip(t *testing.T) {
	type doc struct {
		OID   OID      `json:"oid"`
		TID   TID      `json:"tid"`
		Chain Checksum `json:"chain"`
	}
	in := doc{OID: 0x2a, TID: 0x03f1d2c4e5a6b7c8, Chain: Checksum{1, 2, 3, 0xff}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"oid":"000000000000002a","tid":"03f1d2c4e5a6b7c8","chain":"010203ff` + strings.Repeat("0", 56) + `"}`
	if string(b) != want {
		t.Fatalf("json = %s\nwant %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip = %+v, want %+v", out, in)
	}
	for _, bad := range []string{`{"tid":"xyz"}`, `{"oid":""}`, `{"chain":"00"}`, `{"chain":"` + strings.Repeat("g", 64) + `"}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", bad)
		}
	}
}
