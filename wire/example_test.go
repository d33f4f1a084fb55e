package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/repld/repld/wire"
)

func Example() {
	c, err := wire.NewCodec(wire.DefaultConfig())
	if err != nil {
		panic(err)
	}
	b, err := c.Marshal(&wire.Vote{Epoch: 3, Seq: 7})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", b)

	m, err := c.Unmarshal(b)
	if err != nil {
		panic(err)
	}
	switch m := m.(type) {
	case *wire.Vote:
		fmt.Println("vote", m.Epoch, m.Seq)
	}

	_, err = c.Unmarshal(append(b, 0))
	fmt.Println(errors.Is(err, wire.ErrMalformed))
	// Output:
	// 8264766f7465820307
	// vote 3 7
	// true
}

func ExampleCodec_MarshalBuffers() {
	c, err := wire.NewCodec(wire.DefaultConfig())
	if err != nil {
		panic(err)
	}
	data := []byte("object state")
	bufs, err := c.MarshalBuffers(&wire.Store{Epoch: 3, Seq: 7, OID: 0x10, Data: data})
	if err != nil {
		panic(err)
	}
	// The second buffer is the caller's data itself: write both in order
	// (net.Buffers.WriteTo uses one writev) without copying the data.
	fmt.Printf("head %x, payload is data: %v\n", bufs[0], &bufs[1][0] == &data[0])

	// Decoding aliases the data in the received buffer.
	received := bytes.Join(bufs, nil)
	m, err := c.Unmarshal(received)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", m.(*wire.Store).Data)
	// Output:
	// head 826573746f726585030710004c, payload is data: true
	// object state
}
