package main

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeAnswer feeds arbitrary bytes to the decoders of every answer
// replctl reads from a node: none may panic, and an accepted answer must
// hold the invariants validate promises and survive a round trip.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(`{"name":"r1","role":"replica","epoch":1,"last_tid":"03f1a2b3c4d5e6f7","state":"live","catch_up":{"done_tid":"0000000000000001","target_tid":"0000000000000002"}}`))
	f.Add([]byte(`{"tid":"03f1a2b3c4d5e6f7","chain":"` + hexSum("x") + `"}`))
	f.Add([]byte(`{"tid":"0000000000000001","chain":"` + hexSum("x") + `","user":"u","description":"d","extension":"AAE=","records":[{"oid":"0000000000000001","size":3,"sha256":"` + hexSum("abc") + `"}]}`))
	f.Add([]byte(`{"at":"0000000000000009","ranges":[{"from":"0000000000000000","to":"00000000000000ff","count":2,"digest":"` + hexSum("d") + `"}]}`))
	f.Add([]byte(`{"objects":[{"oid":"0000000000000002","serial":"0000000000000003","sha256":"` + hexSum("o") + `","size":1}],"more":true}`))
	f.Add([]byte(`{"objects":[{"oid":"0000000000000002"},{"oid":"0000000000000001"}]}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []validator{&NodeStatus{}, &Txn{}, &Digest{}, &Objects{}} {
			if decodeAnswer(data, v) != nil {
				continue
			}
			if err := v.validate(); err != nil {
				t.Fatalf("accepted an answer that fails validation: %v", err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encode %T: %v", v, err)
			}
			if err := decodeAnswer(b, v); err != nil {
				t.Fatalf("%T does not survive a round trip: %v\n%s", v, err, b)
			}
		}
		var p ChainPoint
		_ = decodeAnswer(data, &p)
		_ = httpError(409, data)
	})
}
