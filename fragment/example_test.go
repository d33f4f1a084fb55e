package fragment_test

import (
	"fmt"

	"github.com/repld/repld/fragment"
)

func Example() {
	// Tiny fragments to keep the output short: 8 bytes, so 3-byte bodies.
	cfg := fragment.Config{MaxFragment: 8}
	s, err := fragment.NewSplitter(cfg)
	if err != nil {
		panic(err)
	}
	r, err := fragment.NewReassembler(cfg)
	if err != nil {
		panic(err)
	}

	fs, err := s.Split([]byte("hello, world"))
	if err != nil {
		panic(err)
	}
	for _, f := range fs.All() {
		// A sender passes f.Parts() to a vectored send; the receiver gets
		// the fragment as one slice.
		received := f.AppendTo(nil)
		fmt.Printf("%x %q\n", received[:fragment.HeaderSize], received[fragment.HeaderSize:])
		msg, done, err := r.Add(received)
		if err != nil {
			panic(err)
		}
		if done {
			fmt.Printf("message: %q\n", msg)
		}
	}
	// Output:
	// 0100000004 "hel"
	// 0100010004 "lo,"
	// 0100020004 " wo"
	// 0100030004 "rld"
	// message: "hello, world"
}

func ExampleReassembler_Add_error() {
	var r fragment.Reassembler // the zero value uses the default Config
	_, _, err := r.Add([]byte{1, 0, 2, 0, 3, 'x'})
	fmt.Println(err)
	// Output:
	// fragment: out of sequence: got fragment 2/3 with no message in progress, want offset 0
}
